// Whole models on the GPU against ONNX Runtime's golden outputs (../shared/data/golden), part by part
// (tests/support/detector_compare.h: boxes, class scores, objectness, and the detections after NMS),
// within bounds_fp32() / bounds_fp16(); outputs poisoned before each run; the same input twice gives
// bit-identical outputs; CUDA-graph replay equals eager execution; the engine survives a
// serialize -> deserialize round trip bit for bit.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "detector_compare.h"
#include "gpu_test_util.h"
#include "kestrel/onnx.h"
#include "test_data.h"
#include "util/file_io.h"

namespace {

using namespace kestrel;

HostTensor read_f32(const std::string& path, Shape shape) {
  auto bytes = util::read_file(path);
  HostTensor t(DType::F32, shape);
  EXPECT_EQ(bytes.size(), t.nbytes()) << path;
  std::memcpy(t.raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

bool bit_equal(const HostTensor& a, const HostTensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

struct ModelCase {
  const char* model;
  Precision prec;
};

class GpuModel : public ::testing::TestWithParam<ModelCase> {};

TEST_P(GpuModel, MatchesGolden) {
  KESTREL_REQUIRE_GPU();
  const auto [model, prec] = GetParam();
  const std::string onnx = std::string("models/") + model + ".onnx";
  KESTREL_REQUIRE_DATA(onnx);
  Builder builder;
  auto engine = builder.build_from_onnx(test::data_path(onnx).string(), test::config(prec));
  const BuildReport& r = builder.report();
  std::printf("[model] %s %s: %zu layers, build %.2f s (tuning %.2f s, %d timed, %d cached, %d rejected), arena %.2f MiB vs %.2f MiB\n",
              model, precision_name(prec), engine->info().layers.size(), r.total_s, r.tune_s, r.layers_tuned,
              r.layers_from_cache, r.tactics_rejected, engine->info().arena_bytes / 1048576.0,
              engine->info().activation_bytes / 1048576.0);
  for (auto& n : r.notes) std::printf("[model]   note: %s\n", n.c_str());
  auto ctx = engine->create_execution_context();
  const test::HeadBounds bounds = prec == Precision::FP16 ? test::bounds_fp16() : test::bounds_fp32();
  for (const char* image : {"000000000139", "000000037777"}) {
    const std::string in = std::string("golden/") + image + ".input.bin";
    const std::string out = std::string("golden/") + model + "." + image + ".output.bin";
    KESTREL_REQUIRE_DATA(in);
    KESTREL_REQUIRE_DATA(out);
    const HostTensor x = read_f32(test::data_path(in).string(), {1, 3, 640, 640});
    const std::vector<HostTensor> y1 = test::run_poisoned(*ctx, {x});
    const std::vector<HostTensor> y2 = test::run_poisoned(*ctx, {x});
    ASSERT_EQ(y1.size(), 1u);
    ASSERT_EQ(y1[0].dtype(), DType::F32);
    const HostTensor ref = read_f32(test::data_path(out).string(), y1[0].shape());
    EXPECT_TRUE(test::all_finite(y1[0])) << "unwritten output elements";
    const test::HeadError e = test::compare_head(y1[0].data<float>(), ref.data<float>(), ref.shape());
    std::printf("[model] %s %s on %s vs golden: %s\n", model, precision_name(prec), image, e.describe().c_str());
    RecordProperty(std::string("boxes_rel_l2_") + image, std::to_string(e.boxes.rel_l2));
    RecordProperty(std::string("scores_rel_l2_") + image, std::to_string(e.scores.rel_l2));
    EXPECT_TRUE(test::within(e, bounds)) << image;
    EXPECT_TRUE(bit_equal(y1[0], y2[0])) << "two runs on the same input differ";
    // Eager (no graph) gives the same bits as the graph replay.
    ctx->set_cuda_graphs(false);
    const std::vector<HostTensor> y3 = test::run_poisoned(*ctx, {x});
    ctx->set_cuda_graphs(true);
    EXPECT_TRUE(bit_equal(y1[0], y3[0])) << "eager and graph runs differ";
  }
  // Round trip through the engine file format.
  const std::vector<uint8_t> bytes = engine->serialize();
  auto loaded = Runtime().deserialize(bytes.data(), bytes.size());
  auto ctx2 = loaded->create_execution_context();
  const HostTensor x = read_f32(test::data_path("golden/000000000139.input.bin").string(), {1, 3, 640, 640});
  EXPECT_TRUE(bit_equal(test::run_poisoned(*ctx, {x})[0], test::run_poisoned(*ctx2, {x})[0])) << "deserialized engine differs";
  EXPECT_EQ(loaded->serialize(), bytes);
}

INSTANTIATE_TEST_SUITE_P(Models, GpuModel,
                         ::testing::Values(ModelCase{"yolov8n", Precision::FP32}, ModelCase{"yolov8n", Precision::FP16},
                                           ModelCase{"yolov5n", Precision::FP32}, ModelCase{"yolov5n", Precision::FP16},
                                           ModelCase{"yolo11n", Precision::FP32}, ModelCase{"yolo11n", Precision::FP16}),
                         [](const auto& info) {
                           return std::string(info.param.model) + (info.param.prec == Precision::FP16 ? "_fp16" : "_fp32");
                         });

}  // namespace
