// INT8 engines of the real models against the CPU simulation of the same Q/DQ graph (quant.h's
// contract): calibrated on a few coco128 images (percentile, default policy), built for the GPU, run on
// the golden inputs with poisoned outputs. The GPU and the simulation may differ only where an
// activation's last ulp moves an int8 code or an fp16 rounding (and the GPU keeps the detection head's
// row-major tensors in FP32 where the simulation rounds them to fp16), so their outputs must agree far
// more closely than INT8 agrees with FP32. Also: the engine built from the exported Q/DQ ONNX matches
// the one built from the graph, and an INT8 engine survives serialization. Every bound is a fixed number
// (none relative to the simulation's own error, which a worse calibration would loosen): against the
// simulation kGpuVsSimulation, against FP32 the model's INT8 bound (tests/support/int8_bounds.h, the
// same one the CPU simulation is held to in tests/quant/int8_accuracy_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>

#include <cstring>
#include <filesystem>

#include "gpu_test_util.h"
#include "int8_bounds.h"
#include "kestrel/onnx.h"
#include "kestrel/inference.h"
#include "kestrel/quant.h"
#include "onnx/exporter.h"
#include "test_data.h"
#include "util/file_io.h"

namespace {

using namespace kestrel;

// GPU (or its reference kernels, or the engine from the Q/DQ ONNX) vs the CPU simulation, output error:
// measured on an H200 0.022-0.049 (reasons below); a scale not honoured differs by the quantization
// error itself (0.08-0.19).
constexpr double kGpuVsSimulation = 0.075;

HostTensor read_input(const std::string& path) {
  auto bytes = util::read_file(path);
  HostTensor t(DType::F32, {1, 3, 640, 640});
  EXPECT_EQ(bytes.size(), t.nbytes()) << path;
  std::memcpy(t.raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

struct Quantized {
  Graph plain, qdq;
};

Quantized quantize(const std::string& model) {
  quant::ModelForms forms = quant::plain_and_fused(import_onnx(test::data_path("models/" + model + ".onnx").string()));
  quant::CalibOptions co;
  co.images = test::data_path("coco128").string();
  co.max_images = 8;
  co.progress = false;
  const quant::Calibration cal = quant::calibrate(forms.fused, co);
  quant::QuantOptions qo;
  qo.activation_scales = cal.scales;
  Quantized q{std::move(forms.plain), std::move(forms.fused)};
  quant::quantize_graph(q.qdq, qo);
  return q;
}

class Int8Model : public ::testing::TestWithParam<const char*> {};

TEST_P(Int8Model, MatchesSimulation) {
  KESTREL_REQUIRE_GPU();
  const std::string model = GetParam();
  KESTREL_REQUIRE_DATA("models/" + model + ".onnx");
  KESTREL_REQUIRE_DATA("coco128");
  KESTREL_REQUIRE_DATA("golden/000000000139.input.bin");
  const Quantized q = quantize(model);
  Builder builder;
  // Every layer as quantized (the default build may leave out a quantization where that is faster:
  // checked further down against FP32 and this engine).
  BuilderConfig strict = test::config(Precision::INT8);
  strict.obey_precision_constraints = true;
  auto engine = builder.build(q.qdq, strict, "", model);
  EXPECT_EQ(engine->info().precision, Precision::INT8);
  int int8_layers = 0;
  for (const auto& l : engine->info().layers) int8_layers += l.op == "kestrel.ConvInt8";
  for (auto& n : builder.report().notes) std::printf("[int8]   note: %s\n", n.c_str());
  EXPECT_GT(int8_layers, 0);
  auto ctx = engine->create_execution_context();
  BuilderConfig ref_cfg = test::config(Precision::INT8);
  ref_cfg.reference_tactics = true;
  auto ref_engine = Builder().build(q.qdq, ref_cfg, "", model);
  auto ref_ctx = ref_engine->create_execution_context();
  const quant::Simulator sim(q.qdq);
  auto cpu = make_cpu_engine(import_onnx(test::data_path("models/" + model + ".onnx").string()));
  for (const char* image : {"000000000139", "000000037777"}) {
    const HostTensor x = read_input(test::data_path(std::string("golden/") + image + ".input.bin").string());
    const std::vector<HostTensor> y1 = test::run_poisoned(*ctx, {x});
    const std::vector<HostTensor> y2 = test::run_poisoned(*ctx, {x});
    ASSERT_EQ(y1.size(), 1u);
    ASSERT_TRUE(test::all_finite(y1[0])) << "an output element was never written";
    EXPECT_EQ(0, std::memcmp(y1[0].raw(), y2[0].raw(), y1[0].nbytes())) << "INT8 engine is not deterministic";
    const HostTensor s = sim.run({x})[0];
    const HostTensor f = cpu->infer(x);
    const double vs_sim = quant::output_error(y1[0], s), sim_vs_fp32 = quant::output_error(s, f),
                 gpu_vs_fp32 = quant::output_error(y1[0], f);
    std::printf("[int8] %s %s: %d int8 layers; output error GPU vs simulation %.3g, simulation vs FP32 %.3g, GPU vs "
                "FP32 %.3g\n",
                model.c_str(), image, int8_layers, vs_sim, sim_vs_fp32, gpu_vs_fp32);
    // Every kernel matches the simulation per layer (int8_ops_test.cpp: exact up to the activation's
    // last ulp). Whole models cannot: rounding to int8 amplifies any last-ulp difference -- a
    // perturbation d of a value flips its code with probability ~d/step, an error of one step, so the
    // L2 error grows towards sqrt(d * step) layer by layer. Seeds: the tensor-core epilogue's
    // tanh.approx SiLU, CUDA's expf vs glibc's, and (YOLO11's attention) row-major tensors the GPU keeps
    // in FP32 where the simulation rounds them to fp16, cuDNN's epilogue rounding where the builder
    // picks its INT8 plans. Measured on an H200: GPU vs simulation 0.026-0.049 (reference kernels
    // 0.022-0.043) where the quantization error itself is 0.076-0.194,
    // and the GPU as far from FP32 as the simulation (0.95-1.06x). The mAP of both is in
    // bench/RESULTS.md.
    const test::Int8Bound bound = test::int8_vs_fp32(model);
    EXPECT_LT(vs_sim, kGpuVsSimulation) << image;
    EXPECT_LT(sim_vs_fp32, bound.output_error) << image;
    EXPECT_LT(gpu_vs_fp32, bound.output_error) << image;
    const test::HeadError e = test::compare_head(y1[0].data<float>(), f.data<float>(), f.shape());
    std::printf("[int8] %s %s GPU vs FP32: %s\n", model.c_str(), image, e.describe().c_str());
    EXPECT_TRUE(test::within(e, bound.head)) << image;
    const HostTensor r = test::run_poisoned(*ref_ctx, {x})[0];
    const double ref_vs_sim = quant::output_error(r, s);
    std::printf("[int8] %s %s: reference-kernel engine vs simulation %.3g\n", model.c_str(), image, ref_vs_sim);
    EXPECT_LT(ref_vs_sim, kGpuVsSimulation) << image;
  }

  // The exported Q/DQ ONNX builds an engine computing the same thing (its scales are honoured).
  Graph plain = q.plain;
  quant::apply_to_plain_graph(plain, q.qdq);
  const std::string bytes = export_onnx_bytes(plain);
  const std::filesystem::path path = std::filesystem::temp_directory_path() / ("kestrel_int8_" + model + ".qdq.onnx");
  util::write_file(path.string(), bytes.data(), bytes.size());
  // Every layer as quantized, as `engine`; then the default build, which may run layers above INT8
  // (the stem on the float image, convs timed faster in FP16).
  auto from_file = Builder().build_from_onnx(path.string(), strict);
  auto preferred = Builder().build_from_onnx(path.string(), test::config(Precision::INT8));
  std::filesystem::remove(path);
  auto ctx2 = from_file->create_execution_context();
  auto ctx_preferred = preferred->create_execution_context();
  const HostTensor x = read_input(test::data_path("golden/000000000139.input.bin").string());
  const HostTensor a = test::run_poisoned(*ctx, {x})[0], b = test::run_poisoned(*ctx2, {x})[0];
  const HostTensor p = test::run_poisoned(*ctx_preferred, {x})[0];
  const double d = quant::output_error(b, a);
  std::printf("[int8] %s from Q/DQ ONNX vs from graph: %.3g\n", model.c_str(), d);
  // Both engines quantize with the same scales, but each build times its own tactics (cuDNN's epilogue
  // rounding or ours): int8 codes flip as above, as far apart as the GPU and the simulation (0.041-0.046
  // on an H200). Scales not honoured would differ by the quantization error itself. A layer above INT8
  // must not take the result further from FP32.
  const HostTensor f = cpu->infer(x);
  EXPECT_LT(d, kGpuVsSimulation);
  EXPECT_LT(quant::output_error(b, f), test::int8_vs_fp32(model).output_error);
  ASSERT_TRUE(test::all_finite(p)) << "an output element was never written";
  const double p_vs_fp32 = quant::output_error(p, f);
  std::printf("[int8] %s default precision constraints vs FP32: %.3g (all INT8: %.3g)\n", model.c_str(), p_vs_fp32,
              quant::output_error(a, f));
  EXPECT_LT(p_vs_fp32, test::int8_vs_fp32(model).output_error);

  // Serialization keeps the precision and the result.
  const std::vector<uint8_t> blob = engine->serialize();
  auto back = Runtime().deserialize(blob.data(), blob.size());
  EXPECT_EQ(back->info().precision, Precision::INT8);
  auto ctx3 = back->create_execution_context();
  const HostTensor c = test::run_poisoned(*ctx3, {x})[0];
  EXPECT_EQ(0, std::memcmp(a.raw(), c.raw(), a.nbytes())) << "deserialized INT8 engine differs";
}

// A rebuild with the timing cache of an earlier build takes the earlier build's precision choice instead of
// tuning the three plans again: the same layers in the same precisions, for the same reasons, nothing timed.
TEST(Int8Build, RebuildTakesThePrecisionChoiceFromTheTimingCache) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("models/yolo11n.onnx");
  KESTREL_REQUIRE_DATA("coco128");
  const Quantized q = quantize("yolo11n");
  const std::string cache = (std::filesystem::temp_directory_path() / "kestrel_test_int8_choice.cache").string();
  std::filesystem::remove(cache);
  BuilderConfig cfg = test::config(Precision::INT8);
  cfg.timing_cache_path = cache;
  Builder b;
  auto cold = b.build(q.qdq, cfg, "", "yolo11n");
  const BuildReport rc = b.report();
  auto warm = b.build(q.qdq, cfg, "", "yolo11n");
  const BuildReport rw = b.report();
  std::filesystem::remove(cache);
  std::printf("[int8] yolo11n INT8 build: cold %.2f s (%d layers timed), warm %.2f s (%d from cache, %d timed)\n",
              rc.total_s, rc.layers_tuned, rw.total_s, rw.layers_from_cache, rw.layers_tuned);
  for (auto& n : rw.notes) std::printf("[int8]   warm note: %s\n", n.c_str());
  EXPECT_EQ(rw.layers_tuned, 0);
  EXPECT_TRUE(std::any_of(rw.notes.begin(), rw.notes.end(),
                          [](const std::string& n) { return n.find("from the timing cache") != std::string::npos; }));
  const auto &lc = cold->info().layers, &lw = warm->info().layers;
  ASSERT_EQ(lc.size(), lw.size());
  int fp16 = 0;
  for (size_t i = 0; i < lc.size(); ++i) {
    EXPECT_EQ(lc[i].name, lw[i].name);
    EXPECT_EQ(lc[i].op, lw[i].op) << lc[i].name;
    EXPECT_EQ(lc[i].precision, lw[i].precision) << lc[i].name;
    EXPECT_EQ(lc[i].precision_reason, lw[i].precision_reason) << lc[i].name;
    fp16 += lc[i].op == "kestrel.Conv" && lc[i].precision_reason.rfind("measured at batch", 0) == 0;
  }
  std::printf("[int8] yolo11n batch 1: %d INT8 convs run in FP16 by time\n", fp16);
}

// cuDNN's run-time plans compile on threads, each with its own cuDNN handle, into the plan cache before the
// tuner restores them one layer at a time. An engine built that way (empty plan cache folder) picks the same
// tactics as one built with the plan cache off (every plan compiled in the tuner's own thread; both take the
// tactics of one timing cache) and computes the same output bit for bit; the folder then holds the plans.
TEST(Int8Build, PlansCompiledOnThreadsEqualPlansCompiledInTurn) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  KESTREL_REQUIRE_DATA("coco128");
  KESTREL_REQUIRE_DATA("golden/000000000139.input.bin");
  const Quantized q = quantize("yolov8n");
  const std::filesystem::path tmp = std::filesystem::temp_directory_path();
  const std::string cache = (tmp / "kestrel_test_int8_threads.cache").string();
  const std::filesystem::path plans = tmp / "kestrel_test_int8_threads_plans";
  std::filesystem::remove(cache);
  std::filesystem::remove_all(plans);
  BuilderConfig cfg = test::config(Precision::INT8);
  cfg.timing_cache_path = cache;
  cfg.cudnn_plan_cache = "off";
  Builder b;
  auto in_turn = b.build(q.qdq, cfg, "", "yolov8n");
  const double in_turn_s = b.report().total_s;
  cfg.cudnn_plan_cache = plans.string();
  auto threaded = b.build(q.qdq, cfg, "", "yolov8n");
  const double threaded_s = b.report().total_s;
  std::filesystem::remove(cache);
  int stored = 0;
  for (const auto& e : std::filesystem::directory_iterator(plans)) stored += e.is_regular_file();
  std::filesystem::remove_all(plans);
  int cudnn_layers = 0;
  const auto &la = in_turn->info().layers, &lb = threaded->info().layers;
  ASSERT_EQ(la.size(), lb.size());
  for (size_t i = 0; i < la.size(); ++i) {
    EXPECT_EQ(la[i].name, lb[i].name);
    EXPECT_EQ(la[i].tactic, lb[i].tactic) << la[i].name;
    cudnn_layers += lb[i].tactic.rfind("cudnn8_", 0) == 0;
  }
  std::printf("[int8] yolov8n INT8 batch 1: plans compiled in turn %.2f s, on threads (empty plan cache) %.2f s; "
              "%d plans stored, %d layers on a cuDNN plan\n", in_turn_s, threaded_s, stored, cudnn_layers);
  EXPECT_GT(stored, 0) << "no plan reached the plan cache";
  const HostTensor x = read_input(test::data_path("golden/000000000139.input.bin").string());
  auto ca = in_turn->create_execution_context();
  auto cb = threaded->create_execution_context();
  const HostTensor ya = test::run_poisoned(*ca, {x})[0], yb = test::run_poisoned(*cb, {x})[0];
  ASSERT_TRUE(test::all_finite(yb)) << "an output element was never written";
  EXPECT_EQ(0, std::memcmp(ya.raw(), yb.raw(), ya.nbytes())) << "the engines of the two builds differ";
}

INSTANTIATE_TEST_SUITE_P(Models, Int8Model, ::testing::Values("yolov8n", "yolov5n", "yolo11n"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
