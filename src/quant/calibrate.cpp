// Calibration: run the FP32 graph on the calibration images, histogram every tensor an INT8 conv will
// quantize, and turn the histograms into scales with the chosen algorithm (or reuse the cache).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include "kestrel/cpu_backend.h"
#include "kestrel/passes.h"
#include "kestrel/quant.h"
#include "util/progress.h"

namespace kestrel::quant {

std::vector<std::string> quantizable_tensors(const Graph& g) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const Node& n : g.nodes) {
    if (n.op == "Conv") fail("node '", n.name, "' is a plain Conv: quantization works on the optimized graph (run passes::optimize first)");
    if (n.op != "kestrel.Conv" || n.inputs.empty()) continue;
    if (seen.insert(n.inputs[0]).second) names.push_back(n.inputs[0]);
  }
  return names;
}

namespace {
// The model at batch 1, where it is bound to another batch and can be re-batched (else nothing). Images
// are added to the histograms one at a time anyway, and the CPU backend computes each image of a batch
// on its own, so the scales are the same; bound to batch 32, eight calibration images would otherwise be
// computed as 32 (the padding too) and a full batch's tensors held at once.
std::optional<Graph> at_batch_one(const Graph& g) {
  if (g.value(g.inputs.at(0)).shape.at(0) == 1) return std::nullopt;
  Graph one = g;  // constants share their storage: no weights are copied
  try {
    passes::rebatch(one, 1);
  } catch (const Error&) {
    return std::nullopt;  // a graph whose outputs do not follow the batch: calibrated at its own
  }
  return one;
}
}  // namespace

std::map<std::string, Histogram> collect_histograms(const Graph& optimized, const std::vector<std::string>& tensors,
                                                    const std::vector<std::string>& images, bool progress) {
  KESTREL_CHECK(!images.empty(), "calibration: no images");
  const std::optional<Graph> one = at_batch_one(optimized);
  const Graph& g = one ? *one : optimized;
  const int64_t B = g.value(g.inputs.at(0)).shape.at(0);
  CpuExecutor exec(g);
  std::map<std::string, Histogram> hists;
  for (auto& t : tensors) hists[t];
  // CpuExecutor keeps computed tensors only; the graph input (the first conv's X) is the batch itself.
  std::vector<std::string> computed;
  for (auto& t : tensors)
    if (std::find(g.inputs.begin(), g.inputs.end(), t) == g.inputs.end()) computed.push_back(t);
  std::optional<util::ProgressBar> bar;
  if (progress) bar.emplace("calibrate", static_cast<int64_t>(images.size()));
  for (size_t start = 0; start < images.size(); start += static_cast<size_t>(B)) {
    const size_t n = std::min(images.size() - start, static_cast<size_t>(B));
    // One batch at a time: all of the calibration set as tensors would not fit in memory.
    const std::vector<std::string> chunk(images.begin() + static_cast<long>(start),
                                         images.begin() + static_cast<long>(start + n));
    const HostTensor input = load_inputs(g, chunk).at(0);
    std::vector<HostTensor> kept;
    exec.run({input}, computed, &kept);
    std::map<std::string, const HostTensor*> values;
    for (size_t k = 0; k < computed.size(); ++k) values[computed[k]] = &kept[k];
    for (auto& in : g.inputs) values[in] = &input;
    for (const std::string& name : tensors) {
      const HostTensor& t = *values.at(name);
      KESTREL_CHECK(t.dtype() == DType::F32 && t.rank() >= 1 && t.dim(0) == B, "calibration: tensor '", name,
                    "' is not a float32 batch-major tensor");
      // One image at a time, only the real images of a padded last batch: the histogram grows its range
      // as larger values arrive, so adding per image makes the statistics (and a cache's scales) the
      // same whatever batch the model is bound to.
      const int64_t per_image = t.numel() / B;
      for (size_t k = 0; k < n; ++k) hists[name].add(t.data<float>() + static_cast<int64_t>(k) * per_image, per_image);
    }
    if (bar) bar->advance(static_cast<int64_t>(n));
  }
  if (bar) bar->finish();
  return hists;
}

namespace {
std::string algorithm_key(const CalibOptions& o) {
  if (o.algo != CalibAlgo::Percentile) return calib_algo_name(o.algo);
  char buf[64];
  std::snprintf(buf, sizeof buf, "percentile:%g", o.percentile);
  return buf;
}
}  // namespace

Calibration calibrate(const Graph& g, const CalibOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.algo == CalibAlgo::Percentile && !(o.percentile > 0 && o.percentile <= 100))
    throw UsageError("--percentile must be in (0, 100]");
  const std::vector<std::string> tensors = quantizable_tensors(g);
  if (tensors.empty()) fail("the model has no convolution to quantize");
  std::error_code ec;
  // A 0-byte cache holds nothing to reuse (a write cut short, e.g. by a full disk, before writes were
  // atomic): with images it is made again; alone it is an error that says so.
  const bool cache_exists = !o.cache_path.empty() && std::filesystem::exists(o.cache_path, ec);
  const bool cache_empty = cache_exists && std::filesystem::is_regular_file(o.cache_path, ec) &&
                           std::filesystem::file_size(o.cache_path, ec) == 0;
  if (o.images.empty()) {
    // A cache alone, as TensorRT reads one without its calibrator's images: it must still be this
    // model's, at this input size and preprocessing; its algorithm and image set are taken as they are.
    if (o.cache_path.empty()) throw UsageError("calibration needs images (--calib DIR) or a calibration cache");
    if (!std::filesystem::exists(o.cache_path, ec))
      throw UsageError("calibration cache " + o.cache_path + " does not exist: pass --calib DIR to make it");
    if (cache_empty)
      fail("calibration cache ", o.cache_path, " is empty (an interrupted write?): pass --calib DIR to make it again");
    CacheFile c = read_cache(o.cache_path);
    if (o.algo_explicit && c.key.algorithm != algorithm_key(o))
      fail("calibration cache ", o.cache_path, " was made with ", c.key.algorithm, ", not the requested ", algorithm_key(o),
           " (pass --calib DIR to calibrate with it, or leave out --calib-algo / --percentile to use the cache)");
    Calibration cal;
    cal.key = c.key;
    cal.key.model_hash = o.model_id.empty() ? graph_hash(g) : o.model_id;
    cal.key.imgsz = g.value(g.inputs.at(0)).shape.at(2);
    cal.key.letterbox = kLetterboxName;
    check_cache_key(o.cache_path, c.key, cal.key);
    for (auto& t : tensors)
      if (!c.scales.count(t)) fail("calibration cache ", o.cache_path, " has no scale for tensor '", t, "'");
    cal.scales = std::move(c.scales);
    cal.from_cache = true;
    cal.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return cal;
  }
  const std::vector<std::string> images = calibration_images(o);

  Calibration cal;
  cal.key.model_hash = o.model_id.empty() ? graph_hash(g) : o.model_id;
  cal.key.imgsz = g.value(g.inputs.at(0)).shape.at(2);
  cal.key.letterbox = kLetterboxName;
  cal.key.algorithm = algorithm_key(o);
  cal.key.image_count = static_cast<int64_t>(images.size());
  cal.key.image_set_hash = image_set_hash(images);

  if (cache_exists && !cache_empty) {
    CacheFile c = read_cache(o.cache_path);
    check_cache_key(o.cache_path, c.key, cal.key);
    for (auto& t : tensors)
      if (!c.scales.count(t)) fail("calibration cache ", o.cache_path, " has no scale for tensor '", t, "'");
    cal.scales = std::move(c.scales);
    cal.from_cache = true;
  } else {
    const auto hists = collect_histograms(g, tensors, images, o.progress);
    for (auto& [name, h] : hists) cal.scales[name] = compute_scale(h, o.algo, o.percentile);
    cal.images = images;
    if (!o.cache_path.empty()) write_cache(o.cache_path, cal.key, cal.scales);
  }
  cal.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return cal;
}

}  // namespace kestrel::quant
