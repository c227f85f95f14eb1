// Batch binding: a static-batch export re-batched with --batch N, and a dynamic-batch export bound to
// N, both give N copies of the batch-1 result.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "kestrel/cpu_backend.h"
#include "kestrel/onnx.h"
#include "test_data.h"

namespace {

void expect_rebatched_equal(const std::string& rel, bool dynamic) {
  KESTREL_REQUIRE_DATA(rel);
  const std::string path = kestrel::test::data_path(rel);
  kestrel::Graph one = kestrel::import_onnx(path);
  kestrel::ImportOptions o;
  o.batch = 2;
  kestrel::Graph two = kestrel::import_onnx(path, o);
  EXPECT_EQ(two.batch_symbol.empty(), !dynamic);
  const kestrel::Shape in1 = one.value(one.inputs[0]).shape;
  ASSERT_EQ(two.value(two.inputs[0]).shape[0], 2);
  kestrel::HostTensor x1(kestrel::DType::F32, in1);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (float& v : x1.span<float>()) v = u(rng);
  kestrel::Shape in2 = in1;
  in2[0] = 2;
  kestrel::HostTensor x2(kestrel::DType::F32, in2);
  std::memcpy(x2.data<float>(), x1.data<float>(), x1.nbytes());
  std::memcpy(x2.data<float>() + x1.numel(), x1.data<float>(), x1.nbytes());
  auto y1 = kestrel::CpuExecutor(one).run({x1})[0];
  auto y2 = kestrel::CpuExecutor(two).run({x2})[0];
  ASSERT_EQ(y2.shape()[0], 2);
  for (int b = 0; b < 2; ++b)
    for (int64_t i = 0; i < y1.numel(); i += 97)
      ASSERT_NEAR(y2.data<float>()[b * y1.numel() + i], y1.data<float>()[i], 1e-3f * (1.f + std::abs(y1.data<float>()[i])))
          << rel << " batch " << b << " element " << i;
}

TEST(Rebatch, StaticExportYolov8n) { expect_rebatched_equal("models/yolov8n.onnx", false); }
TEST(Rebatch, StaticExportYolov5n) { expect_rebatched_equal("models/yolov5n.onnx", false); }
TEST(Rebatch, StaticExportYolo11n) { expect_rebatched_equal("models/yolo11n.onnx", false); }
TEST(Rebatch, DynamicExportKeepsItsSymbol) { expect_rebatched_equal("models/yolov8n-dyn.onnx", true); }

}  // namespace
