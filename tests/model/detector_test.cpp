// kestrel::Detector on the CPU backend: every input form gives the reference pipeline's boxes, batches
// larger than the engine's are split, concurrent callers get the same results, bad input is an error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <thread>

#include "kestrel/detector.h"
#include "kestrel/image.h"
#include "kestrel/pipeline.h"
#include "kestrel/zoo.h"
#include "test_data.h"

namespace {

using kestrel::Detections;
using kestrel::Detector;
using kestrel::image::Image;

constexpr int64_t kSize = 96;  // small: the zoo model at 96x96 runs in milliseconds

// Smooth colour gradients with a few blocks: gives the seeded zoo model plenty of candidates.
Image synthetic(int w, int h, int seed) {
  Image img = Image::filled(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.pixel(x, y);
      p[0] = static_cast<uint8_t>((x * 3 + seed * 40) & 255);
      p[1] = static_cast<uint8_t>((y * 5 + seed * 17) & 255);
      p[2] = static_cast<uint8_t>(((x / 16 + y / 16 + seed) % 3) * 100);
    }
  return img;
}

kestrel::DetectorOptions cpu_options(int64_t batch = 1) {
  kestrel::DetectorOptions o;
  o.backend = kestrel::Backend::Cpu;
  o.imgsz = kSize;
  o.batch = batch;
  return o;
}

kestrel::DetectOptions low_conf() {
  kestrel::DetectOptions o;
  o.conf = 0.05f;  // seeded weights: low scores, still a deterministic set of boxes
  return o;
}

void expect_same_boxes(const std::vector<kestrel::yolo::Box>& a, const std::vector<kestrel::yolo::Box>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].x1, b[i].x1);
    EXPECT_EQ(a[i].y1, b[i].y1);
    EXPECT_EQ(a[i].x2, b[i].x2);
    EXPECT_EQ(a[i].y2, b[i].y2);
    EXPECT_EQ(a[i].score, b[i].score);
    EXPECT_EQ(a[i].cls, b[i].cls);
  }
}

// The reference: pipeline::reference_detect on an engine of the same model, one image at a time.
std::vector<kestrel::yolo::Box> reference(const Image& img, const kestrel::DetectOptions& d) {
  kestrel::LoadOptions lo;
  lo.imgsz = kSize;
  static auto engine = kestrel::make_cpu_engine(kestrel::load_model("yolov8n", lo));
  kestrel::yolo::NmsOptions nms = kestrel::yolo::NmsOptions::prediction();
  nms.conf = d.conf;
  nms.iou = d.iou;
  nms.max_det = d.max_det;
  const Image* ptr = &img;
  return kestrel::pipeline::reference_detect(*engine, std::span<const Image* const>(&ptr, 1), kestrel::yolo::HeadKind::V8,
                                             nms)[0];
}

TEST(Detector, DecodedImagesMatchTheReferencePipeline) {
  Detector det("yolov8n", cpu_options());
  EXPECT_EQ(det.batch(), 1);
  EXPECT_EQ(det.imgsz(), kSize);
  EXPECT_EQ(det.num_classes(), 80);
  ASSERT_EQ(det.names().size(), 80u);
  EXPECT_EQ(det.names()[0], "person");
  EXPECT_EQ(det.description().rfind("cpu fp32", 0), 0u);
  const std::vector<Image> images = {synthetic(160, 120, 0), synthetic(70, 130, 1)};
  const auto results = det.detect(std::span<const Image>(images), low_conf());
  ASSERT_EQ(results.size(), 2u);
  size_t boxes = 0;
  for (size_t i = 0; i < images.size(); ++i) {
    const Detections& r = results[i];
    EXPECT_EQ(r.width, images[i].width);
    EXPECT_EQ(r.height, images[i].height);
    expect_same_boxes(r.boxes, reference(images[i], low_conf()));
    for (size_t k = 0; k < r.boxes.size(); ++k) {
      const auto& b = r.boxes[k];
      EXPECT_GT(b.score, 0.05f);
      EXPECT_LE(b.score, r.boxes[k == 0 ? 0 : k - 1].score);
      EXPECT_GE(b.x1, 0.f);
      EXPECT_LE(b.x2, static_cast<float>(r.width));
      EXPECT_LE(b.y2, static_cast<float>(r.height));
      EXPECT_LT(b.cls, 80);
    }
    EXPECT_GT(r.speed.inference_ms, 0.0);
    boxes += r.boxes.size();
  }
  EXPECT_GT(boxes, 0u) << "the synthetic images gave no boxes: the comparison checked nothing";
}

TEST(Detector, RgbStridedViewsEncodedBytesAndFilesGiveTheSameBoxes) {
  Detector det("yolov8n", cpu_options());
  const Image bgr = synthetic(150, 100, 2);
  const auto want = det.detect(std::span<const Image>(&bgr, 1), low_conf()).at(0).boxes;
  ASSERT_FALSE(want.empty());

  // RGB with padded rows.
  const size_t stride = 150 * 3 + 7;
  std::vector<uint8_t> rgb(stride * 100, 0xEE);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 150; ++x)
      for (int c = 0; c < 3; ++c) rgb[y * stride + x * 3 + c] = bgr.pixel(x, y)[2 - c];
  const kestrel::ImageView view{rgb.data(), 150, 100, stride, kestrel::PixelOrder::RGB};
  expect_same_boxes(det.detect(std::span<const kestrel::ImageView>(&view, 1), low_conf()).at(0).boxes, want);

  // PNG bytes (lossless) and a PNG file.
  const std::vector<uint8_t> png = kestrel::image::encode_png(bgr);
  const std::span<const uint8_t> bytes(png);
  expect_same_boxes(det.detect_encoded(std::span<const std::span<const uint8_t>>(&bytes, 1), low_conf()).at(0).boxes, want);
  const auto path = std::filesystem::temp_directory_path() / ("kestrel-detector-" + std::to_string(::getpid()) + ".png");
  kestrel::image::write_image(path.string(), bgr);
  expect_same_boxes(det.detect(std::vector<std::string>{path.string()}, low_conf()).at(0).boxes, want);
  std::filesystem::remove(path);
}

TEST(Detector, InputsLargerThanTheBatchAreSplit) {
  Detector det("yolov8n", cpu_options(2));
  EXPECT_EQ(det.batch(), 2);
  std::vector<Image> images;
  for (int i = 0; i < 5; ++i) images.push_back(synthetic(100 + 10 * i, 90, i));
  const auto results = det.detect(std::span<const Image>(images), low_conf());
  ASSERT_EQ(results.size(), 5u);
  // Each chunk of two (the last one alone, padded) through the reference path on a batch-2 engine.
  kestrel::LoadOptions lo;
  lo.imgsz = kSize;
  lo.batch = 2;
  auto engine = kestrel::make_cpu_engine(kestrel::load_model("yolov8n", lo));
  kestrel::yolo::NmsOptions nms = kestrel::yolo::NmsOptions::prediction();
  nms.conf = low_conf().conf;
  for (size_t first = 0; first < 5; first += 2) {
    std::vector<const Image*> chunk;
    for (size_t i = first; i < std::min<size_t>(first + 2, 5); ++i) chunk.push_back(&images[i]);
    const auto want = kestrel::pipeline::reference_detect(*engine, std::span<const Image* const>(chunk),
                                                          kestrel::yolo::HeadKind::V8, nms);
    for (size_t i = 0; i < chunk.size(); ++i) expect_same_boxes(results[first + i].boxes, want[i]);
  }
}

TEST(Detector, ConcurrentCallersGetTheSerialResults) {
  Detector det("yolov8n", cpu_options());
  std::vector<Image> images;
  for (int i = 0; i < 4; ++i) images.push_back(synthetic(120, 80 + 10 * i, i));
  std::vector<std::vector<kestrel::yolo::Box>> serial;
  for (auto& img : images) serial.push_back(det.detect(std::span<const Image>(&img, 1), low_conf()).at(0).boxes);
  std::vector<std::vector<kestrel::yolo::Box>> parallel(images.size());
  std::vector<std::thread> threads;
  for (size_t t = 0; t < images.size(); ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 3; ++rep)
        parallel[t] = det.detect(std::span<const Image>(&images[t], 1), low_conf()).at(0).boxes;
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < images.size(); ++t) expect_same_boxes(parallel[t], serial[t]);
}

TEST(Detector, BadInputIsAnErrorNamingIt) {
  Detector det("yolov8n", cpu_options());
  try {
    det.detect(std::vector<std::string>{"/nonexistent/bus.jpg"});
    ADD_FAILURE() << "a missing file was detected";
  } catch (const kestrel::Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/bus.jpg"), std::string::npos) << e.what();
  }
  const std::vector<uint8_t> junk = {1, 2, 3, 4};
  const std::span<const uint8_t> bytes(junk);
  EXPECT_THROW(det.detect_encoded(std::span<const std::span<const uint8_t>>(&bytes, 1)), kestrel::Error);
  const kestrel::ImageView null_view{nullptr, 10, 10};
  EXPECT_THROW(det.detect(std::span<const kestrel::ImageView>(&null_view, 1)), kestrel::Error);
  const Image img = synthetic(32, 32, 0);
  kestrel::DetectOptions nan;
  nan.conf = std::nanf("");
  EXPECT_THROW(det.detect(std::span<const Image>(&img, 1), nan), kestrel::UsageError);
  kestrel::DetectOptions iou;
  iou.iou = 1.5;
  EXPECT_THROW(det.detect(std::span<const Image>(&img, 1), iou), kestrel::UsageError);
  EXPECT_TRUE(det.detect(std::vector<std::string>{}).empty());
}

TEST(Detector, NonDetectorModelIsRefused) {
  // A classifier-shaped graph: the zoo at batch 1 is a detector; a fake engine with a 2-D output is not.
  class Classifier : public kestrel::InferenceEngine {
   public:
    kestrel::Shape input_shape() const override { return {1, 3, 32, 32}; }
    kestrel::Shape output_shape() const override { return {1, 1000}; }
    kestrel::HostTensor infer(const kestrel::HostTensor&) override { return kestrel::HostTensor(kestrel::DType::F32, {1, 1000}); }
    std::string description() const override { return "test"; }
    const std::map<std::string, std::string>& metadata() const override { return md; }
    std::map<std::string, std::string> md;
  };
  EXPECT_THROW(Detector(std::make_unique<Classifier>()), kestrel::Error);
}

// With the shared data: the trained YOLOv8n on a COCO image equals `kestrel predict`'s pipeline.
TEST(Detector, TrainedModelMatchesPredict) {
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  const std::string model = kestrel::test::data_path("models/yolov8n.onnx").string();
  const std::string image = kestrel::test::data_path("coco-val/images/000000000139.jpg").string();
  kestrel::DetectorOptions o;
  o.backend = kestrel::Backend::Cpu;
  Detector det(model, o);
  const auto got = det.detect(std::vector<std::string>{image}).at(0);
  auto engine = kestrel::make_cpu_engine(kestrel::load_model(model));
  kestrel::pipeline::PredictOptions po;
  po.quiet = true;
  const auto want = kestrel::pipeline::predict(*engine, {image}, po).at(0);
  ASSERT_TRUE(want.error.empty()) << want.error;
  EXPECT_EQ(got.width, want.width);
  EXPECT_EQ(got.height, want.height);
  ASSERT_FALSE(got.boxes.empty());
  expect_same_boxes(got.boxes, want.boxes);
  EXPECT_EQ(det.names()[static_cast<size_t>(got.boxes[0].cls)], kestrel::zoo::coco80_names()[static_cast<size_t>(got.boxes[0].cls)]);
}

}  // namespace
