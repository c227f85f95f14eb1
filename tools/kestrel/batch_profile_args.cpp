#include "batch_profile_args.h"

#include "kestrel/error.h"

namespace kestrel::cli {

void add_batch_profile_options(CLI::App* app, BatchProfileArgs& a) {
  auto* mn = app->add_option("--min-batch", a.min_batch, "Batch profile: smallest batch the engine runs (default 1)")
                 ->check(CLI::Range(1, 4096));
  auto* op = app->add_option("--opt-batch", a.opt_batch, "Batch profile: the batch to tune for (default --max-batch)")
                 ->check(CLI::Range(1, 4096));
  auto* mx = app->add_option("--max-batch", a.max_batch,
                             "Batch profile: one engine for every batch up to this (plans tuned for min, opt, max and "
                             "the powers of two between)")
                 ->check(CLI::Range(1, 4096));
  auto* s1 = app->add_option("--minShapes", a.min_shapes, "trtexec form of --min-batch: NAME:BxCxHxW");
  auto* s2 = app->add_option("--optShapes", a.opt_shapes, "trtexec form of --opt-batch: NAME:BxCxHxW");
  auto* s3 = app->add_option("--maxShapes", a.max_shapes, "trtexec form of --max-batch: NAME:BxCxHxW");
  for (auto* s : {s1, s2, s3})
    for (auto* b : {mn, op, mx}) s->excludes(b);
}

namespace {
// "images:8x3x640x640" -> 8, checked against the model's input.
int64_t batch_of(const std::string& flag, const std::string& spec, const std::string& name, const Shape& shape) {
  const size_t colon = spec.rfind(':');
  if (colon == std::string::npos)
    throw UsageError(flag + " " + spec + ": expected NAME:BxCxHxW, e.g. " + name + ":8x3x640x640");
  const std::string n = spec.substr(0, colon);
  if (n != name) throw UsageError(flag + " names input '" + n + "', but the model's input is '" + name + "'");
  Shape dims;
  std::string rest = spec.substr(colon + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    const size_t x = rest.find('x', pos);
    const std::string d = rest.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    int64_t v = 0;
    size_t used = 0;
    try {
      v = std::stoll(d, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (d.empty() || used != d.size() || v < 1) throw UsageError(flag + " " + spec + ": '" + d + "' is not a positive dimension");
    dims.push_back(v);
    if (x == std::string::npos) break;
    pos = x + 1;
  }
  if (dims.size() != shape.size() || !std::equal(dims.begin() + 1, dims.end(), shape.begin() + 1))
    throw UsageError(flag + " " + spec + ": the model's input '" + name + "' is " + shape_str(shape) +
                     "; only the batch (the first dimension) may differ");
  return dims[0];
}
}  // namespace

void resolve_batch_profile(BatchProfileArgs& a, const std::string& input_name, const Shape& input_shape) {
  if (!a.min_shapes.empty()) a.min_batch = batch_of("--minShapes", a.min_shapes, input_name, input_shape);
  if (!a.opt_shapes.empty()) a.opt_batch = batch_of("--optShapes", a.opt_shapes, input_name, input_shape);
  if (!a.max_shapes.empty()) a.max_batch = batch_of("--maxShapes", a.max_shapes, input_name, input_shape);
}

}  // namespace kestrel::cli
