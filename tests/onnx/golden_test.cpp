// Whole models against ONNX Runtime's reference outputs (../shared/data/golden): relative L2 over the
// whole output, and part by part (boxes, class scores, objectness, detections after NMS) within the
// FP32 bounds of tests/support/detector_compare.h, which the GPU FP32 engines are held to as well.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "detector_compare.h"
#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"
#include "test_data.h"
#include "util/file_io.h"

namespace {

kestrel::HostTensor read_f32(const std::string& path, kestrel::Shape shape) {
  auto bytes = kestrel::util::read_file(path);
  kestrel::HostTensor t(kestrel::DType::F32, shape);
  EXPECT_EQ(bytes.size(), t.nbytes()) << path;
  std::memcpy(t.raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

double rel_l2(const kestrel::HostTensor& a, const kestrel::HostTensor& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    num += d * d;
    den += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  return std::sqrt(num / den);
}

struct GoldenCase {
  const char* model;
  const char* image;
  const char* reference;  // whose golden output to compare with (the dynamic export shares yolov8n's)
};

class Golden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(Golden, CpuBackendMatchesOnnxRuntime) {
  const auto [model, image, reference] = GetParam();
  const std::string onnx = std::string("models/") + model + ".onnx";
  const std::string in = std::string("golden/") + image + ".input.bin";
  const std::string out = std::string("golden/") + reference + "." + image + ".output.bin";
  KESTREL_REQUIRE_DATA(onnx);
  KESTREL_REQUIRE_DATA(out);
  kestrel::Graph g = kestrel::import_onnx(kestrel::test::data_path(onnx));
  kestrel::CpuExecutor exec(g);
  auto x = read_f32(kestrel::test::data_path(in), {1, 3, 640, 640});
  auto y = exec.run({x});
  ASSERT_EQ(y.size(), 1u);
  auto ref = read_f32(kestrel::test::data_path(out), y[0].shape());
  const double err = rel_l2(y[0], ref);
  RecordProperty("rel_l2", std::to_string(err));
  std::printf("%s on %s: relative L2 %.3g\n", model, image, err);
  EXPECT_LT(err, 1e-5);
  const kestrel::test::HeadError e = kestrel::test::compare_head(y[0].data<float>(), ref.data<float>(), ref.shape());
  std::printf("%s on %s: %s\n", model, image, e.describe().c_str());
  EXPECT_TRUE(kestrel::test::within(e, kestrel::test::bounds_fp32()));
}

INSTANTIATE_TEST_SUITE_P(Models, Golden,
                         ::testing::Values(GoldenCase{"yolov5n", "000000000139", "yolov5n"}, GoldenCase{"yolov5n", "000000037777", "yolov5n"},
                                           GoldenCase{"yolov8n", "000000000139", "yolov8n"}, GoldenCase{"yolov8n", "000000037777", "yolov8n"},
                                           GoldenCase{"yolo11n", "000000000139", "yolo11n"}, GoldenCase{"yolo11n", "000000037777", "yolo11n"},
                                           GoldenCase{"yolov8n-dyn", "000000000139", "yolov8n"}),
                         [](const auto& info) {
                           std::string s = std::string(info.param.model) + "_" + info.param.image;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
