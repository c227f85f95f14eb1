#pragma once
// Checks every verb applies to its command line, so that the same mistake gets the same answer in
// every verb: numbers that must be finite, options that would have no effect, and outputs that cannot
// be written or would replace an input.
#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "kestrel/tensor.h"

namespace kestrel::cli {

// [lo, hi] for a floating-point option. CLI::Range lets NaN through (every comparison with NaN is
// false), so `--conf nan` would silently keep or drop everything; this refuses NaN and infinities.
CLI::Validator finite_range(double lo, double hi);

// `--imgsz N` on a model whose input size is fixed at another size would run at the model's own size
// without a word: a UsageError instead. `input` is the shape the engine or graph was opened with.
void check_imgsz_applied(int64_t imgsz, const Shape& input, const std::string& model);

// An input a verb reads, for check_output: its path and how to name it ("the model", ...).
using NamedInput = std::pair<std::string, std::string>;

// Before any work: fails when `out` (the value of option `what`) cannot be written (missing or
// read-only folder, a folder in its place), or names one of `inputs` (a UsageError: it would replace
// an input). Creates nothing. An empty `out` is not written and passes.
void check_output(const std::string& out, const std::string& what, const std::vector<NamedInput>& inputs);

// `--workers N`: threads that decode image files (Ultralytics' name; 0, the default, is one per
// hardware thread but one). The same option, range and help in every verb that reads images.
CLI::Option* add_workers_option(CLI::App* app, int& workers);

// A JSON document written atomically, as every other output (util::write_file).
void write_json(const std::string& path, const std::string& dumped);

}  // namespace kestrel::cli
