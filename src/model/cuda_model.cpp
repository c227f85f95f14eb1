// The CUDA half of model opening (CUDA builds only): is a GPU usable, and MODEL -> Engine (an engine
// file loaded, anything else built for this GPU in memory).
#include <cuda_runtime_api.h>

#include <algorithm>

#include "kestrel/batch_profile.h"
#include "kestrel/builder.h"
#include "kestrel/cuda_model.h"
#include "kestrel/zoo.h"
#include "model_internal.h"
#include "util/file_io.h"

namespace kestrel {

namespace detail {
bool cuda_device_usable(std::string* why_not) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *why_not = std::string("no usable CUDA device (") + cudaGetErrorString(e) + ")";
    return false;
  }
  if (n == 0) {
    *why_not = "no CUDA device found";
    return false;
  }
  return true;
}
}  // namespace detail

namespace {
Precision cuda_precision(const std::string& p) {
  if (p == "fp32") return Precision::FP32;
  if (p == "fp16") return Precision::FP16;
  if (p == "int8") return Precision::INT8;
  throw UsageError("the cuda backend runs fp32, fp16 or int8 (asked for " + p + ")");
}
}  // namespace

std::unique_ptr<Engine> open_cuda_engine(const std::string& model, const ModelOptions& options) {
  if (is_engine_file(model)) {
    auto e = Runtime().load(model);
    const EngineInfo& info = e->info();
    if (options.max_batch || options.min_batch || options.opt_batch)
      throw UsageError("a batch profile is a build setting; the engine " + model + " has its own (" +
                       std::to_string(info.min_batch) + " to " + std::to_string(info.max_batch) + ")");
    if (options.batch && (options.batch < info.min_batch || options.batch > info.max_batch))
      throw UsageError(info.min_batch == info.max_batch
                           ? "the engine " + model + " was built for batch " + std::to_string(info.batch) + ", not " +
                                 std::to_string(options.batch) + " (build one for a range with --max-batch)"
                           : "the engine " + model + " runs batches " + std::to_string(info.min_batch) + " to " +
                                 std::to_string(info.max_batch) + ", not " + std::to_string(options.batch));
    const Shape& in = info.inputs.at(0).shape;
    if (options.imgsz && in.size() == 4 && (in[2] != options.imgsz || in[3] != options.imgsz))
      throw UsageError("the engine " + model + " takes " + shape_str(in) + " images, not imgsz " +
                       std::to_string(options.imgsz));
    // The precision is the engine's own; asking for another one is a mistake, not a conversion.
    if (options.precision != "fp32" && cuda_precision(options.precision) != info.precision)
      throw UsageError("the engine " + model + " was built for " + precision_name(info.precision) + ", not " +
                       options.precision + " (build another with kestrel build)");
    return e;
  }
  BuilderConfig cfg;
  cfg.precision = cuda_precision(options.precision);
  check_batch_profile(0, options.min_batch, options.opt_batch, options.max_batch);
  // With a profile, options.batch is the batch to run: in the range, checked before minutes of tuning.
  const int64_t lo = std::max<int64_t>(options.min_batch, 1);
  if (options.max_batch && options.batch && (options.batch < lo || options.batch > options.max_batch))
    throw UsageError("batch " + std::to_string(options.batch) + " is outside the batch profile [" + std::to_string(lo) + ", " +
                     std::to_string(options.max_batch) + "]");
  cfg.batch = options.max_batch ? 0 : options.batch;
  cfg.min_batch = options.min_batch, cfg.opt_batch = options.opt_batch, cfg.max_batch = options.max_batch;
  cfg.imgsz = options.imgsz;
  cfg.timing_cache_path = options.timing_cache;
  cfg.cudnn_plan_cache = options.runtime.cudnn_plan_cache;  // one folder for building and running
  Graph g;
  if (cfg.precision == Precision::INT8) {
    g = int8_model(model, options.batch, options.imgsz, options.int8, quant::LayerPrecision::FP16, options.verbose).qdq;
  } else {
    LoadOptions lo;
    lo.batch = options.batch;
    lo.imgsz = options.imgsz;
    g = load_model(model, lo);
  }
  std::string hash;
  try {
    const std::vector<char> bytes = util::read_file(model);
    hash = hash_bytes(bytes.data(), bytes.size());
  } catch (const Error&) {
    hash = hash_bytes(model.data(), model.size());  // a zoo name
  }
  return Builder().build(g, cfg, hash, model);
}

}  // namespace kestrel
