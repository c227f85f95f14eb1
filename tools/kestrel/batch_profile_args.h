#pragma once
// The build verb's batch profile: --min-batch/--opt-batch/--max-batch, or trtexec's
// --minShapes/--optShapes/--maxShapes NAME:BxCxHxW (the batch is read from them; the other dims
// must be the model input's).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>

#include "kestrel/graph.h"

namespace kestrel::cli {

struct BatchProfileArgs {
  int64_t min_batch = 0, opt_batch = 0, max_batch = 0;
  std::string min_shapes, opt_shapes, max_shapes;
};

void add_batch_profile_options(CLI::App* app, BatchProfileArgs& a);

// Resolves the shapes form against the model's input (name and per-image dims); afterwards only
// min/opt/max_batch are read (check_batch_profile checks them).
void resolve_batch_profile(BatchProfileArgs& a, const std::string& input_name, const Shape& input_shape);

}  // namespace kestrel::cli
