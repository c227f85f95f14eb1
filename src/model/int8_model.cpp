// MODEL + calibration options -> the quantized (Q/DQ) graph an INT8 engine runs (and the CPU
// simulation): a Q/DQ ONNX is read with its own scales; any other model is calibrated here.
#include <fnmatch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "kestrel/model.h"
#include "kestrel/onnx.h"
#include "kestrel/zoo.h"
#include "onnx/exporter.h"
#include "quant/hash.h"
#include "util/file_io.h"
#include "util/paths.h"

namespace kestrel {

namespace {
// `count` images spread evenly over the calibration set (the first ones are often one scene).
std::vector<std::string> spread(const std::vector<std::string>& images, size_t count) {
  if (images.size() <= count) return images;
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) out.push_back(images[i * images.size() / count]);
  return out;
}
// The model file's bytes; nothing for a zoo name (or a missing file: the loader says so).
std::optional<std::string> model_bytes(const std::string& model) {
  std::ifstream f(model, std::ios::binary);
  if (!f) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The op type strings are stored verbatim in the protobuf; a match is confirmed by the import.
bool has_qdq_ops(const std::string& onnx_bytes) { return onnx_bytes.find("QuantizeLinear") != std::string::npos; }

// The model's identity for calibration caches: its file's bytes (or zoo name). Not the batch it is bound
// to: calibration adds every image to the histograms on its own (quant::collect_histograms), so every
// batch size gives the same scales, and `bench --batch 32` reuses the cache `val` made at batch 1.
std::string model_id(const std::optional<std::string>& bytes, const std::string& model) {
  quant::detail::Fnv1a h;
  h.str(bytes ? *bytes : model);
  return h.hex();
}

Graph load_graph(const std::string& model, int64_t batch, int64_t imgsz) {
  LoadOptions o;
  o.batch = batch;
  o.imgsz = imgsz;
  return load_model(model, o);
}
}  // namespace

void write_qdq_onnx(const Int8Model& m, const std::string& path) {
  KESTREL_CHECK(!m.from_qdq_file, "internal: the model is a Q/DQ file already");
  Graph qdq_plain = m.plain;
  quant::apply_to_plain_graph(qdq_plain, m.qdq);
  ExportOptions eo;
  eo.metadata[quant::kPrecisionMetadataKey] = quant::encode_precisions(m.qdq);
  export_onnx(qdq_plain, path, eo);
}

bool is_qdq_model(const std::string& model) {
  const auto bytes = model_bytes(model);
  return bytes && has_qdq_ops(*bytes);
}

Int8Model int8_model(const std::string& model, int64_t batch, int64_t imgsz, const Int8Options& a,
                     quant::LayerPrecision float_precision, bool verbose) {
  Int8Model m;
  const std::optional<std::string> bytes = model_bytes(model);  // read once: Q/DQ check, load, cache id
  if (bytes && has_qdq_ops(*bytes)) {
    if (!a.calib.empty() || a.int8_auto || !a.rules.empty() || a.fp16_early_stride_set || a.bias_images > 0)
      throw UsageError(model + " is already quantized (Q/DQ): its own scales and precisions are used, so --calib, "
                       "--int8-auto, --layer-precision, --fp16-early-stride and --bias-correct-images do not apply");
    m.qdq = quant::load_qdq_onnx_bytes(*bytes, float_precision, model, batch, imgsz);
    if (quant::has_qdq(m.qdq)) {
      m.from_qdq_file = true;
      int int8 = 0, convs = 0;
      for (const Node& n : m.qdq.nodes)
        if (n.op == "kestrel.Conv") {
          ++convs;
          int8 += n.attrs.s("kestrel_precision", "") == "int8";
        }
      if (verbose) std::printf("quantized model %s: %d of %d convs int8 (its own Q/DQ scales)\n", model.c_str(), int8, convs);
      return m;
    }
  }
  if (a.calib.empty() && a.cache.empty())
    throw UsageError("INT8 needs calibration images (--calib DIR, with --calib-cache FILE to calibrate once), an existing "
                     "--calib-cache or a Q/DQ model (kestrel quantize MODEL --calib DIR -o MODEL.qdq.onnx)");
  if (a.calib.empty() && a.int8_auto) throw UsageError("--int8-auto measures on calibration images: pass --calib DIR");
  if (a.percentile_set && a.algo != "percentile")
    throw UsageError("--percentile has no effect with --calib-algo " + a.algo);
  if (!a.cache.empty()) {
    std::error_code ec;
    if (std::filesystem::exists(model, ec)) util::refuse_overwrite(a.cache, "--calib-cache", model, "the model");
    if (!a.calib.empty() && !std::filesystem::exists(a.cache, ec)) util::check_writable(a.cache, "--calib-cache");
  }
  quant::CalibOptions co;
  co.images = a.calib;
  co.max_images = a.calib_images;
  co.images_explicit = a.calib_images_set;
  co.algo = quant::parse_calib_algo(a.algo);
  co.percentile = a.percentile;
  co.cache_path = a.cache;
  co.progress = a.progress;
  co.model_id = model_id(bytes, model);
  co.algo_explicit = a.algo_set;
  quant::QuantOptions qo;
  if (!a.rules.empty()) qo.rules = quant::parse_layer_rules(a.rules);
  qo.default_policy = !a.no_default_policy;
  if (a.no_default_policy && a.fp16_early_stride_set)
    throw UsageError("--fp16-early-stride is part of the default policy: it does nothing with --no-default-policy");
  qo.high_res_fp16_stride = a.fp16_early_stride;
  qo.float_precision = float_precision;

  // The plain graph is what gets exported; the fused one is what engines run, so what calibration and
  // the precision decisions see.
  quant::ModelForms forms = quant::plain_and_fused(load_graph(model, batch, imgsz));
  if (imgsz) {
    const Shape& in = forms.fused.value(forms.fused.inputs.at(0)).shape;
    if (in.size() == 4 && in[2] != imgsz)
      throw UsageError("--imgsz " + std::to_string(imgsz) + " does not apply to " + model + ": its input is fixed at " +
                       shape_str(in));
  }
  m.plain = std::move(forms.plain);
  const Graph& fused = forms.fused;
  // A rule that matches nothing is a typo: say so before a minute of calibration, not after.
  for (const quant::LayerRule& r : qo.rules) {
    bool any = false;
    for (const Node& n : fused.nodes) any = any || fnmatch(r.pattern.c_str(), n.name.c_str(), 0) == 0;
    if (!any)
      throw UsageError("--layer-precision pattern '" + r.pattern + "' matches no layer (layer names look like '" +
                       (fused.nodes.empty() ? std::string() : fused.nodes.front().name) + "')");
  }
  m.calibration = quant::calibrate(fused, co);
  const quant::Calibration& cal = m.calibration;
  if (verbose) {
    if (cal.from_cache)
      std::printf("calibration: %zu scales from %s\n", cal.scales.size(), a.cache.c_str());
    else
      std::printf("calibration: %zu tensors on %zu images (%s) in %.1f s%s%s\n", cal.scales.size(), cal.images.size(),
                  cal.key.algorithm.c_str(), cal.seconds, a.cache.empty() ? "" : ", cache written to ", a.cache.c_str());
  }
  qo.activation_scales = cal.scales;
  if (a.int8_auto) {
    qo.automatic.enabled = true;
    qo.automatic.target = a.auto_target;
    qo.automatic.progress = a.progress;
    const auto images = cal.images.empty() ? quant::calibration_images(co) : cal.images;
    qo.automatic.inputs = quant::load_inputs(fused, spread(images, static_cast<size_t>(a.auto_images)));
  }
  if (a.bias_images > 0) {
    if (a.calib.empty()) throw UsageError("bias correction measures on calibration images: pass --calib DIR");
    qo.bias_correction.enabled = true;
    qo.bias_correction.progress = a.progress;
    const auto images = spread(cal.images.empty() ? quant::calibration_images(co) : cal.images,
                               static_cast<size_t>(a.bias_images));
    // The means count every batch entry: a padded last batch would dilute them.
    const int64_t b = fused.value(fused.inputs.at(0)).shape.at(0);
    if (b > 1 && static_cast<int64_t>(images.size()) % b != 0)
      throw UsageError("--bias-correct-images: " + std::to_string(images.size()) + " images do not fill batches of " +
                       std::to_string(b) + ": use a multiple of the batch");
    qo.bias_correction.inputs = quant::load_inputs(fused, images);
  }
  m.qdq = fused;
  m.report = quant::quantize_graph(m.qdq, qo);
  if (verbose) {
    std::printf("%s", m.report.summary().c_str());
    std::fflush(stdout);
  }
  return m;
}

}  // namespace kestrel
