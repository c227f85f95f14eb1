// GPU pre- and post-processing against the CPU reference (src/yolo):
//   letterbox kernel == yolo::letterbox bit for bit (every resize mode, odd sizes, golden images);
//   detection kernels == decode_candidates + nms + scale_boxes: same boxes, scores and classes, same
//   order, bit for bit, on synthetic heads built to stress ties, overlaps and many candidates, and on
//   the golden outputs of the three models; images the kernels cannot reproduce are flagged;
//   the CUDA InferenceEngine's image detector == the CPU pipeline run on the same engine.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "backend/cuda/yolo_kernels.h"
#include "gpu_test_util.h"
#include "kestrel/cuda_inference.h"
#include "kestrel/onnx.h"
#include "kestrel/pipeline.h"
#include "kestrel/yolo.h"
#include "test_data.h"
#include "util/file_io.h"
#include "yolo/resize_plan.h"

namespace {

using namespace kestrel;
using yolo::Box;

image::Image random_image(int w, int h, uint32_t seed) {
  std::mt19937 rng(seed);
  image::Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (auto& v : img.bgr) v = static_cast<uint8_t>(rng() & 0xff);
  return img;
}

// The GPU letterbox of a batch of images, read back as float32 [n, 3, S, S].
std::vector<float> gpu_letterbox(const std::vector<image::Image>& imgs, int S, int batch) {
  std::vector<cuda::LetterboxJob> jobs;
  std::vector<yolo::detail::ResizeTap> taps;
  std::vector<uint8_t> pixels;
  for (const auto& img : imgs) {
    const yolo::LetterboxInfo g = yolo::letterbox_geometry(img.width, img.height, S);
    const yolo::detail::ResizePlan p = yolo::detail::resize_plan(img.width, img.height, g.new_w, g.new_h);
    cuda::LetterboxJob j{};
    j.pixels = static_cast<int64_t>(pixels.size());
    j.src_w = img.width, j.src_h = img.height, j.new_w = g.new_w, j.new_h = g.new_h;
    j.pad_left = g.pad_left, j.pad_top = g.pad_top, j.mode = static_cast<int32_t>(p.mode);
    j.xtaps = static_cast<int32_t>(taps.size());
    taps.insert(taps.end(), p.xt.begin(), p.xt.end());
    j.ytaps = static_cast<int32_t>(taps.size());
    taps.insert(taps.end(), p.yt.begin(), p.yt.end());
    j.xmax = p.xmax;
    jobs.push_back(j);
    pixels.insert(pixels.end(), img.bgr.begin(), img.bgr.end());
  }
  if (taps.empty()) taps.push_back({});
  test::DevBuf dj(jobs), dt(taps), dp(pixels);
  test::DevBuf out(sizeof(float) * 3 * S * S * batch);
  EXPECT_EQ(cudaMemset(out.p, 0xFF, out.bytes), cudaSuccess);  // NaN: an unwritten pixel shows
  cuda::launch_letterbox(static_cast<const uint8_t*>(dp.p), static_cast<const cuda::LetterboxJob*>(dj.p),
                         static_cast<const yolo::detail::ResizeTap*>(dt.p), static_cast<int>(imgs.size()), batch, S,
                         static_cast<float*>(out.p), nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return out.download<float>();
}

TEST(GpuLetterbox, BitExactWithCpuForEveryResizeMode) {
  KESTREL_REQUIRE_GPU();
  // Downscale, upscale, identity (Copy), exact 2x (AreaHalf), 1-pixel strips, tall and wide.
  const std::vector<std::pair<int, int>> sizes = {{100, 75}, {35, 23}, {64, 64}, {128, 128}, {128, 96},
                                                  {1, 200}, {300, 1}, {17, 90}, {640, 427}, {63, 65}};
  std::vector<image::Image> imgs;
  for (size_t i = 0; i < sizes.size(); ++i) imgs.push_back(random_image(sizes[i].first, sizes[i].second, 7 + i));
  // 64: four pixels per thread; 66 and 63: one (sizes not divisible by 4).
  for (const int S : {64, 66, 63}) {
    SCOPED_TRACE("size " + std::to_string(S));
    const int batch = static_cast<int>(imgs.size()) + 2;  // two padding-only slots
    const std::vector<float> got = gpu_letterbox(imgs, S, batch);
    const size_t per = 3 * S * S;
    std::vector<float> want(per);
    for (size_t i = 0; i < imgs.size(); ++i) {
      yolo::letterbox(imgs[i], S, want.data());
      EXPECT_EQ(std::memcmp(got.data() + i * per, want.data(), per * sizeof(float)), 0)
          << "image " << sizes[i].first << "x" << sizes[i].second << " differs from the CPU letterbox";
    }
    for (size_t i = imgs.size(); i < static_cast<size_t>(batch); ++i)
      for (size_t k = 0; k < per; ++k) ASSERT_EQ(got[i * per + k], 114.f / 255.f) << "padding slot " << i;
  }
}

TEST(GpuLetterbox, BitExactOnGoldenImages) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  std::vector<image::Image> imgs;
  for (const char* f : {"000000000139", "000000037777", "000000000632"}) {
    const auto p = test::data_path(std::string("coco-val/images/") + f + ".jpg");
    if (std::filesystem::exists(p)) imgs.push_back(image::read_image(p.string()));
  }
  const std::vector<float> got = gpu_letterbox(imgs, 640, static_cast<int>(imgs.size()));
  const size_t per = 3 * 640 * 640;
  std::vector<float> want(per);
  for (size_t i = 0; i < imgs.size(); ++i) {
    yolo::letterbox(imgs[i], 640, want.data());
    EXPECT_EQ(std::memcmp(got.data() + i * per, want.data(), per * sizeof(float)), 0) << "golden image " << i;
  }
}

// ---------------------------------------------------------------------------------------------------
// Detection kernels

struct Head {
  yolo::HeadKind kind;
  int64_t batch, anchors, nc;
  std::vector<float> data;
  int64_t channels() const { return nc + (kind == yolo::HeadKind::V8 ? 4 : 5); }
  Shape shape() const {
    return kind == yolo::HeadKind::V8 ? Shape{batch, channels(), anchors} : Shape{batch, anchors, channels()};
  }
  float& at(int64_t b, int64_t a, int64_t ch) {
    return kind == yolo::HeadKind::V8 ? data[(b * channels() + ch) * anchors + a] : data[(b * anchors + a) * channels() + ch];
  }
};

// Boxes in clusters (so NMS has work), scores drawn from few values (so ties happen), many above
// the validation threshold.
Head synthetic_head(yolo::HeadKind kind, int64_t batch, int64_t anchors, int64_t nc, uint32_t seed) {
  Head h{kind, batch, anchors, nc, {}};
  h.data.assign(static_cast<size_t>(batch * anchors * h.channels()), 0.f);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t a = 0; a < anchors; ++a) {
      const float cx = 40.f + 80.f * static_cast<float>(a % 7) + 6.f * u(rng);
      const float cy = 40.f + 80.f * static_cast<float>((a / 7) % 7) + 6.f * u(rng);
      h.at(b, a, 0) = cx, h.at(b, a, 1) = cy, h.at(b, a, 2) = 20.f + 60.f * u(rng), h.at(b, a, 3) = 20.f + 60.f * u(rng);
      const int64_t first = kind == yolo::HeadKind::V8 ? 4 : 5;
      if (kind == yolo::HeadKind::V5) h.at(b, a, 4) = u(rng) < 0.3f ? 0.0005f : std::round(u(rng) * 16.f) / 16.f;
      for (int64_t c = 0; c < nc; ++c) {
        const float r = u(rng);
        h.at(b, a, first + c) = r < 0.6f ? r * 0.001f : std::round(u(rng) * 64.f) / 64.f;  // ties on purpose
      }
    }
  }
  return h;
}

struct GpuDets {
  std::vector<std::vector<Box>> boxes;
  std::vector<uint32_t> flags;
};

GpuDets gpu_detect(const Head& h, const yolo::NmsOptions& o, const std::vector<yolo::LetterboxInfo>& geo) {
  cuda::DetectParams p;
  p.batch = static_cast<int>(h.batch), p.anchors = static_cast<int>(h.anchors), p.channels = static_cast<int>(h.channels());
  p.nc = static_cast<int>(h.nc), p.v5 = h.kind == yolo::HeadKind::V5, p.multi_label = o.multi_label && h.nc > 1;
  p.conf = o.conf, p.iou = o.iou, p.max_det = o.max_det, p.max_nms = o.max_nms, p.max_wh = o.max_wh;
  std::vector<cuda::UnletterboxInfo> info;
  for (auto& g : geo)
    info.push_back({static_cast<float>(g.gain), static_cast<float>(g.pad_left), static_cast<float>(g.pad_top),
                    static_cast<float>(g.src_w), static_cast<float>(g.src_h)});
  test::DevBuf dout(h.data), dinfo(info), ws(cuda::detect_workspace_bytes(p));
  test::DevBuf dets(sizeof(float) * 6 * o.max_det * h.batch), count(4 * h.batch), flags(4 * h.batch), cands(4 * h.batch);
  EXPECT_EQ(cudaMemset(dets.p, 0xFF, dets.bytes), cudaSuccess);
  cuda::launch_detect(static_cast<const float*>(dout.p), p, static_cast<const cuda::UnletterboxInfo*>(dinfo.p), ws.p,
                      static_cast<float*>(dets.p), static_cast<int32_t*>(count.p), static_cast<uint32_t*>(flags.p),
                      static_cast<int32_t*>(cands.p), nullptr);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  const auto d = dets.download<float>();
  const auto n = count.download<int32_t>();
  GpuDets r;
  r.flags = flags.download<uint32_t>();
  for (int64_t b = 0; b < h.batch; ++b) {
    std::vector<Box> v;
    for (int k = 0; k < n[b]; ++k) {
      const float* q = d.data() + (b * o.max_det + k) * 6;
      v.push_back(Box{q[0], q[1], q[2], q[3], q[4], static_cast<int>(q[5])});
    }
    r.boxes.push_back(v);
  }
  return r;
}

std::vector<Box> cpu_detect(const Head& h, int64_t b, const yolo::NmsOptions& o, const yolo::LetterboxInfo& g) {
  const float* img = h.data.data() + b * h.anchors * h.channels();
  auto v = yolo::nms(yolo::decode_candidates(img, h.channels(), h.anchors, h.kind, o), o);
  yolo::scale_boxes(v, g);
  return v;
}

void expect_same(const std::vector<Box>& got, const std::vector<Box>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    const Box &a = got[i], &b = want[i];
    ASSERT_TRUE(a.x1 == b.x1 && a.y1 == b.y1 && a.x2 == b.x2 && a.y2 == b.y2 && a.score == b.score && a.cls == b.cls)
        << what << ": detection " << i << " differs: gpu (" << a.x1 << "," << a.y1 << "," << a.x2 << "," << a.y2 << " "
        << a.score << " c" << a.cls << ") cpu (" << b.x1 << "," << b.y1 << "," << b.x2 << "," << b.y2 << " " << b.score
        << " c" << b.cls << ")";
  }
}

struct NmsCase {
  yolo::HeadKind kind;
  bool validation;
};

class GpuDetect : public ::testing::TestWithParam<NmsCase> {};

TEST_P(GpuDetect, SameDetectionsAsCpuOnSyntheticHeads) {
  KESTREL_REQUIRE_GPU();
  const auto [kind, validation] = GetParam();
  yolo::NmsOptions o = validation ? yolo::NmsOptions::validation(kind) : yolo::NmsOptions::prediction();
  std::vector<yolo::LetterboxInfo> geo = {yolo::letterbox_geometry(640, 427, 640), yolo::letterbox_geometry(352, 230, 640),
                                          yolo::letterbox_geometry(500, 640, 640)};
  // 2100 anchors: the scores are read four at a time; 2101: one at a time (rows not 16-byte aligned).
  for (int64_t anchors : {2100, 2101}) {
    const Head h = synthetic_head(kind, 3, anchors, 12, kind == yolo::HeadKind::V8 ? 11 : 12);
    for (int max_det : {300, 7}) {
      o.max_det = max_det;
      const GpuDets g = gpu_detect(h, o, geo);
      for (int64_t b = 0; b < h.batch; ++b) {
        EXPECT_EQ(g.flags[b], 0u) << "image " << b << " was not expected to need the CPU";
        const auto want = cpu_detect(h, b, o, geo[b]);
        EXPECT_GT(want.size(), 3u);
        expect_same(g.boxes[b], want,
                    std::to_string(anchors) + " anchors, image " + std::to_string(b) + " max_det " + std::to_string(max_det));
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Heads, GpuDetect,
                         ::testing::Values(NmsCase{yolo::HeadKind::V8, true}, NmsCase{yolo::HeadKind::V8, false},
                                           NmsCase{yolo::HeadKind::V5, true}, NmsCase{yolo::HeadKind::V5, false}),
                         [](const auto& info) {
                           return std::string(info.param.kind == yolo::HeadKind::V8 ? "v8" : "v5") +
                                  (info.param.validation ? "_validation" : "_prediction");
                         });

TEST(GpuDetectFlags, ImagesTheKernelsCannotReproduceAreFlagged) {
  KESTREL_REQUIRE_GPU();
  yolo::NmsOptions o = yolo::NmsOptions::validation(yolo::HeadKind::V8);
  // 9000 anchors: every class of every image has more candidates than the first pass holds, so the
  // unflagged image also checks the second (large-class) pass against the CPU.
  Head h = synthetic_head(yolo::HeadKind::V8, 4, 9000, 3, 5);
  h.at(0, 17, 4 + 1) = NAN;                 // a NaN class score drops its anchor on the CPU
  h.at(1, 3, 2) = 20000.f;                  // a box wider than half the class offset
  for (int64_t a = 0; a < h.anchors; ++a) h.at(2, a, 4) = 0.5f;  // one class over the large pass's capacity
  std::vector<yolo::LetterboxInfo> geo(4, yolo::letterbox_geometry(640, 640, 640));
  const GpuDets g = gpu_detect(h, o, geo);
  EXPECT_TRUE(g.flags[0] & cuda::kDetectNotSeparable);
  EXPECT_TRUE(g.flags[1] & cuda::kDetectNotSeparable);
  EXPECT_TRUE(g.flags[2] & cuda::kDetectClassOverflow);
  EXPECT_EQ(g.flags[3], 0u);
  expect_same(g.boxes[3], cpu_detect(h, 3, o, geo[3]), "unflagged image");
  o.max_nms = 100;  // fewer than the candidates: the global cut needs the CPU
  EXPECT_TRUE(gpu_detect(h, o, geo).flags[3] & cuda::kDetectTooMany);
}

// Classes large enough for the heavy path (suppression bits by many blocks, one warp walking them),
// at its bounds: 2048 candidates (its capacity: every word of every row), 2049 (the second pass), 257
// and 256 (either side of where it starts); boxes on a grid so that hundreds survive and max_det cuts
// inside the walk; scores from few values so that ties decide the order. Image 2's class 0 is too
// large for either pass and flagged.
TEST(GpuDetect, HeavyClassesAtTheirBoundsMatchTheCpu) {
  KESTREL_REQUIRE_GPU();
  yolo::NmsOptions o = yolo::NmsOptions::validation(yolo::HeadKind::V8);
  Head h{yolo::HeadKind::V8, 3, 8400, 3, {}};
  h.data.assign(static_cast<size_t>(h.batch * h.anchors * h.channels()), 0.f);
  std::mt19937 rng(21);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  const int64_t counts[3][3] = {{2048, 257, 256}, {2049, 300, 1000}, {8400, 2048, 0}};
  for (int64_t b = 0; b < h.batch; ++b) {
    for (int64_t a = 0; a < h.anchors; ++a) {
      h.at(b, a, 0) = 8.f + 15.f * static_cast<float>(a % 42) + 4.f * u(rng);
      h.at(b, a, 1) = 8.f + 15.f * static_cast<float>((a / 42) % 42) + 4.f * u(rng);
      h.at(b, a, 2) = 8.f + 30.f * u(rng), h.at(b, a, 3) = 8.f + 30.f * u(rng);
      for (int64_t c = 0; c < h.nc; ++c)  // anchor a is a candidate of class c for the first counts[b][c] anchors
        h.at(b, a, 4 + c) = a < counts[b][c] ? 0.002f + std::round(u(rng) * 32.f) / 33.f : 0.0005f;
    }
  }
  std::vector<yolo::LetterboxInfo> geo(3, yolo::letterbox_geometry(640, 640, 640));
  for (int max_det : {300, 3000, 5}) {
    o.max_det = max_det;
    const GpuDets g = gpu_detect(h, o, geo);
    for (int64_t b = 0; b < 2; ++b) {
      EXPECT_EQ(g.flags[b], 0u) << "image " << b;
      const auto want = cpu_detect(h, b, o, geo[b]);
      if (max_det == 3000) {
        EXPECT_GT(want.size(), 600u) << "hundreds of survivors per class";
      }
      expect_same(g.boxes[b], want, "image " + std::to_string(b) + " max_det " + std::to_string(max_det));
    }
    EXPECT_TRUE(g.flags[2] & cuda::kDetectClassOverflow);
  }
}

HostTensor read_f32(const std::string& path, const Shape& shape) {
  auto bytes = util::read_file(path);
  HostTensor t(DType::F32, shape);
  EXPECT_EQ(bytes.size(), t.nbytes()) << path;
  std::memcpy(t.raw(), bytes.data(), std::min(bytes.size(), t.nbytes()));
  return t;
}

TEST(GpuDetect, SameDetectionsAsCpuOnGoldenOutputs) {
  KESTREL_REQUIRE_GPU();
  int checked = 0;
  for (const char* model : {"yolov8n", "yolo11n", "yolov5n"}) {
    for (const char* image : {"000000000139", "000000037777"}) {
      const std::string rel = std::string("golden/") + model + "." + image + ".output.bin";
      if (!std::filesystem::exists(test::data_path(rel))) continue;
      const bool v5 = std::string(model) == "yolov5n";
      Head h{v5 ? yolo::HeadKind::V5 : yolo::HeadKind::V8, 1, v5 ? 25200 : 8400, 80, {}};
      const HostTensor t = read_f32(test::data_path(rel).string(), h.shape());
      h.data.assign(t.data<float>(), t.data<float>() + t.numel());
      const auto geo = std::string(image) == "000000000139" ? yolo::letterbox_geometry(640, 426, 640)
                                                            : yolo::letterbox_geometry(352, 230, 640);
      for (bool validation : {true, false}) {
        const yolo::NmsOptions o = validation ? yolo::NmsOptions::validation(h.kind) : yolo::NmsOptions::prediction();
        const GpuDets g = gpu_detect(h, o, {geo});
        EXPECT_EQ(g.flags[0], 0u) << model << " " << image;
        const auto want = cpu_detect(h, 0, o, geo);
        expect_same(g.boxes[0], want, std::string(model) + " " + image + (validation ? " validation" : " prediction"));
        std::printf("[detect] %s %s %s: %zu detections, identical\n", model, image, validation ? "val" : "pred", want.size());
      }
      ++checked;
    }
  }
  if (!checked) GTEST_SKIP() << "no golden outputs";
}

// The CUDA engine's image detector against the CPU pipeline on the same engine: the same network
// output, so every box must be identical (fallbacks included).
TEST(GpuImageDetector, SameBoxesAsTheCpuPipelineOnTheSameEngine) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  std::vector<std::string> files;
  for (auto& e : std::filesystem::directory_iterator(test::data_path("coco-val/images"))) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  files.resize(std::min<size_t>(files.size(), 12));
  std::vector<image::Image> imgs;
  for (auto& f : files) imgs.push_back(image::read_image(f));
  imgs.push_back(random_image(1280, 720, 3));  // exact 2x downscale
  imgs.push_back(random_image(640, 640, 4));   // no resize at all
  for (const char* model : {"yolov8n", "yolov5n"}) {
    const std::string onnx = std::string("models/") + model + ".onnx";
    if (!std::filesystem::exists(test::data_path(onnx))) continue;
    for (Precision prec : {Precision::FP32, Precision::FP16}) {
      ImportOptions io;
      io.batch = 4;
      Graph g = import_onnx(test::data_path(onnx).string(), io);
      auto inference = make_cuda_inference(Builder().build(g, test::config(prec)));
      ASSERT_NE(inference->image_detector(), nullptr);
      const auto head = yolo::detect_head(inference->output_shape());
      for (bool validation : {true, false}) {
        const auto o = validation ? yolo::NmsOptions::validation(head) : yolo::NmsOptions::prediction();
        for (size_t s = 0; s < imgs.size(); s += 4) {
          std::vector<const image::Image*> ptrs;
          for (size_t i = s; i < std::min(imgs.size(), s + 4); ++i) ptrs.push_back(&imgs[i]);
          StageTimes t;
          const auto got = pipeline::detect_batch(*inference, ptrs, head, o, &t);
          const auto want = pipeline::reference_detect(*inference, ptrs, head, o);
          ASSERT_EQ(got.size(), want.size());
          for (size_t i = 0; i < got.size(); ++i)
            expect_same(got[i], want[i], std::string(model) + " " + precision_name(prec) + " image " + std::to_string(s + i));
          EXPECT_GT(t.inference_ms, 0);
          EXPECT_GT(t.preprocess_ms, 0);
          EXPECT_GT(t.postprocess_ms, 0);
        }
      }
    }
  }
}

// An engine with a batch profile runs a short batch as it is (3 images: plans 2 + 1), the CPU
// pipeline pads it to the full batch. With reference tactics an image's output does not depend on the
// plan, so the boxes must be identical.
TEST(GpuImageDetector, BatchProfileEngineRunsShortBatchesAlone) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  std::vector<std::string> files;
  for (auto& e : std::filesystem::directory_iterator(test::data_path("coco-val/images"))) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  files.resize(std::min<size_t>(files.size(), 7));
  std::vector<image::Image> imgs;
  for (auto& f : files) imgs.push_back(image::read_image(f));
  BuilderConfig c = test::config(Precision::FP16);
  c.reference_tactics = true;
  c.max_batch = 4;
  auto inference = make_cuda_inference(Builder().build_from_onnx(test::data_path("models/yolov8n.onnx").string(), c));
  EXPECT_EQ(inference->input_shape()[0], 4);
  const auto head = yolo::detect_head(inference->output_shape());
  const auto o = yolo::NmsOptions::validation(head);
  for (size_t s = 0; s < imgs.size(); s += 3) {
    std::vector<const image::Image*> ptrs;
    for (size_t i = s; i < std::min(imgs.size(), s + 3); ++i) ptrs.push_back(&imgs[i]);
    const auto got = pipeline::detect_batch(*inference, ptrs, head, o);
    const auto want = pipeline::reference_detect(*inference, ptrs, head, o);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) expect_same(got[i], want[i], "profile engine image " + std::to_string(s + i));
  }
}

// A batch built image by image: images added and then discarded leave nothing behind, the batch
// submitted after them is exactly the CPU pipeline's, and the detector refuses what it cannot stage
// (more images than the batch, a third batch while two are in flight).
TEST(GpuImageDetector, BatchBuiltImageByImage) {
  KESTREL_REQUIRE_GPU();
  KESTREL_REQUIRE_DATA("models/yolov8n.onnx");
  ImportOptions io;
  io.batch = 2;
  Graph g = import_onnx(test::data_path("models/yolov8n.onnx").string(), io);
  auto inference = make_cuda_inference(Builder().build(g, test::config(Precision::FP16)));
  ImageDetector* det = inference->image_detector();
  ASSERT_NE(det, nullptr);
  const auto head = yolo::detect_head(inference->output_shape());
  const auto o = yolo::NmsOptions::validation(head);
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  std::vector<image::Image> imgs;
  for (auto& e : std::filesystem::directory_iterator(test::data_path("coco-val/images"))) {
    imgs.push_back(image::read_image(e.path().string()));
    if (imgs.size() == 3) break;
  }
  ASSERT_EQ(imgs.size(), 3u);
  std::sort(imgs.begin(), imgs.end(), [](const image::Image& a, const image::Image& b) { return a.bgr.size() < b.bgr.size(); });
  imgs.push_back(random_image(1280, 960, 5));  // larger than any: the staging grows under it
  const image::Image &small = imgs[0], &mid = imgs[1], &other = imgs[2], &big = imgs[3];
  const image::Image* first[] = {&small, &big};
  const image::Image* second[] = {&mid};
  const auto want1 = pipeline::reference_detect(*inference, first, head, o);
  const auto want2 = pipeline::reference_detect(*inference, second, head, o);

  det->add(other);
  det->add(mid);
  EXPECT_THROW(det->add(small), Error);  // a third image in a batch of two
  det->discard_added();
  det->add(small);  // smaller first: the staging grows under the second image and keeps the first
  det->add(big);
  det->submit_added(head, o);
  det->submit(second, head, o);
  EXPECT_THROW(det->add(small), Error);  // both slots are in flight
  const auto got1 = det->collect();
  const auto got2 = det->collect();
  ASSERT_EQ(got1.size(), 2u);
  ASSERT_EQ(got2.size(), 1u);
  for (size_t i = 0; i < 2; ++i) expect_same(got1[i], want1[i], "image-by-image batch, image " + std::to_string(i));
  expect_same(got2[0], want2[0], "whole batch after it");
  size_t boxes = 0;
  for (const auto& b : want1) boxes += b.size();
  EXPECT_GT(boxes + want2[0].size(), 0u);  // the comparison saw detections
  EXPECT_THROW(det->submit_added(head, o), Error);  // nothing added
}

}  // namespace
