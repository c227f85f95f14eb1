// kestrel::Detector on the CUDA backend (label gpu; skips without a GPU): backend auto picks CUDA, fp32
// and fp16 engines find the CPU reference's confident boxes, an engine file opens as a model does, and
// concurrent callers of one Detector get the serial results exactly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "kestrel/cuda_model.h"
#include "kestrel/detector.h"
#include "test_data.h"

namespace {

using kestrel::Detector;
using kestrel::yolo::Box;

#define REQUIRE_GPU_AND_DATA()                                                                     \
  do {                                                                                             \
    if (!kestrel::backend_availability().gpu)                                                      \
      GTEST_SKIP() << "no usable CUDA GPU: " << kestrel::backend_availability().why_not;            \
    KESTREL_REQUIRE_DATA("models/yolov8n.onnx");                                                   \
    KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");                                      \
  } while (0)

std::string model() { return kestrel::test::data_path("models/yolov8n.onnx").string(); }
std::string image() { return kestrel::test::data_path("coco-val/images/000000000139.jpg").string(); }

float iou(const Box& a, const Box& b) {
  const float w = std::max(0.f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float h = std::max(0.f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float inter = w * h;
  return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter);
}

// Every CPU box scoring above 0.5 has a GPU box of its class at IoU > 0.9.
void expect_confident_boxes_found(const std::vector<Box>& cpu, const std::vector<Box>& gpu) {
  size_t checked = 0;
  for (const Box& c : cpu) {
    if (c.score < 0.5f) continue;
    ++checked;
    const bool found = std::any_of(gpu.begin(), gpu.end(), [&](const Box& g) { return g.cls == c.cls && iou(c, g) > 0.9f; });
    EXPECT_TRUE(found) << "class " << c.cls << " box [" << c.x1 << " " << c.y1 << " " << c.x2 << " " << c.y2 << "]";
  }
  EXPECT_GT(checked, 0u);
}

std::vector<Box> cpu_boxes() {
  kestrel::DetectorOptions o;
  o.backend = kestrel::Backend::Cpu;
  return Detector(model(), o).detect(std::vector<std::string>{image()}).at(0).boxes;
}

TEST(DetectorGpu, AutoIsCudaAndFindsTheReferenceBoxes) {
  REQUIRE_GPU_AND_DATA();
  const auto cpu = cpu_boxes();
  for (const char* precision : {"fp32", "fp16"}) {
    kestrel::DetectorOptions o;
    o.precision = precision;
    Detector det(model(), o);
    EXPECT_EQ(det.description().rfind(std::string("cuda ") + precision, 0), 0u) << det.description();
    expect_confident_boxes_found(cpu, det.detect(std::vector<std::string>{image()}).at(0).boxes);
  }
}

TEST(DetectorGpu, EngineFilesOpenAsModelsDo) {
  REQUIRE_GPU_AND_DATA();
  const auto path = std::filesystem::temp_directory_path() / ("kestrel-detector-" + std::to_string(::getpid()) + ".engine");
  kestrel::ModelOptions build;
  build.precision = "fp16";
  kestrel::open_cuda_engine(model(), build)->save(path.string());
  Detector det(path.string());
  EXPECT_EQ(det.description().rfind("cuda fp16", 0), 0u) << det.description();
  expect_confident_boxes_found(cpu_boxes(), det.detect(std::vector<std::string>{image()}).at(0).boxes);
  kestrel::DetectorOptions cpu;
  cpu.backend = kestrel::Backend::Cpu;
  EXPECT_THROW(Detector(path.string(), cpu), kestrel::UsageError);
  kestrel::DetectorOptions int8;
  int8.precision = "int8";
  EXPECT_THROW(Detector(path.string(), int8), kestrel::UsageError);  // the engine is fp16: no silent other precision
  std::filesystem::remove(path);
}

TEST(DetectorGpu, ConcurrentCallersGetTheSerialResults) {
  REQUIRE_GPU_AND_DATA();
  kestrel::DetectorOptions o;
  o.precision = "fp16";
  o.batch = 2;
  Detector det(model(), o);
  const std::vector<std::string> images(3, image());  // a batch of two, then one alone
  const auto serial = det.detect(images);
  std::vector<std::vector<kestrel::Detections>> parallel(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < parallel.size(); ++t) threads.emplace_back([&, t] { parallel[t] = det.detect(images); });
  for (auto& th : threads) th.join();
  for (const auto& p : parallel)
    for (size_t i = 0; i < images.size(); ++i) {
      ASSERT_EQ(p[i].boxes.size(), serial[i].boxes.size());
      for (size_t k = 0; k < p[i].boxes.size(); ++k) {
        EXPECT_EQ(p[i].boxes[k].x1, serial[i].boxes[k].x1);
        EXPECT_EQ(p[i].boxes[k].score, serial[i].boxes[k].score);
        EXPECT_EQ(p[i].boxes[k].cls, serial[i].boxes[k].cls);
      }
    }
}

}  // namespace
