// The FP16 bounds of the whole-model checks (tests/support/detector_compare.h, bounds_fp16(), which the
// GPU FP16 engines are held to in tests/cuda/models_test.cpp) against FP16 arithmetic itself: every
// layer of the model in FP16 in the CPU simulation (fp16 storage of inputs, weights and outputs, FP32
// arithmetic: what the GPU's FP16 kernels do, quant.h) on the golden inputs, against FP32. A bound that
// FP16 storage alone breaks would fail every correct GPU engine; this shows it does not, on the CPU.
#include <gtest/gtest.h>

#include "detector_compare.h"
#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"
#include "quant_test_util.h"
#include "test_data.h"
#include "util/file_io.h"

namespace {

using namespace kestrel;

class Fp16Bounds : public ::testing::TestWithParam<const char*> {};

TEST_P(Fp16Bounds, Fp16StorageStaysWithinThem) {
  const std::string model = GetParam();
  KESTREL_REQUIRE_DATA("models/" + model + ".onnx");
  KESTREL_REQUIRE_DATA("golden/000000000139.input.bin");
  Graph fused = import_onnx(test::data_path("models/" + model + ".onnx").string());
  passes::optimize(fused);
  Graph fp16 = fused;
  quant::QuantOptions qo;
  qo.default_policy = false;
  qo.rules = {{"*", quant::LayerPrecision::FP16}};
  qo.float_precision = quant::LayerPrecision::FP16;
  const quant::QuantReport r = quant::quantize_graph(fp16, qo);
  ASSERT_EQ(r.int8, 0);
  ASSERT_GT(r.fp16, 0);
  const std::vector<char> bytes = util::read_file(test::data_path("golden/000000000139.input.bin").string());
  HostTensor x(DType::F32, {1, 3, 640, 640});
  ASSERT_EQ(bytes.size(), x.nbytes());
  std::memcpy(x.raw(), bytes.data(), bytes.size());
  const HostTensor f = CpuExecutor(fused).run({x})[0];
  const HostTensor h = quant::Simulator(fp16).run({x})[0];
  const test::HeadError e = test::compare_head(h.data<float>(), f.data<float>(), f.shape());
  std::printf("[fp16] %s simulated FP16 vs FP32: %s\n", model.c_str(), e.describe().c_str());
  EXPECT_TRUE(test::within(e, test::bounds_fp16()));
  EXPECT_GT(e.scores.max_abs, 0) << "nothing was rounded: the comparison would be vacuous";
}

INSTANTIATE_TEST_SUITE_P(Models, Fp16Bounds, ::testing::Values("yolov8n", "yolov5n", "yolo11n"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
