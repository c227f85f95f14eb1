// kestrel::Detector: images in (files, encoded bytes, decoded pixels), boxes out, on top of
// pipeline::detect_batch (the engine's GPU pre/post-processing when it has one, else the CPU reference).
#include "kestrel/detector.h"

#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>

#include "kestrel/image.h"
#include "kestrel/pipeline.h"
#include "util/stopwatch.h"

namespace kestrel {

namespace {
using util::Clock;
using util::ms_since;

yolo::NmsOptions nms_options(const DetectOptions& o) {
  if (!(o.conf >= 0.f && o.conf <= 1.f)) throw UsageError("detect: conf must be in [0, 1], not " + std::to_string(o.conf));
  if (!(o.iou >= 0.0 && o.iou <= 1.0)) throw UsageError("detect: iou must be in [0, 1], not " + std::to_string(o.iou));
  if (o.max_det < 1) throw UsageError("detect: max_det must be at least 1, not " + std::to_string(o.max_det));
  yolo::NmsOptions n = yolo::NmsOptions::prediction();
  n.conf = o.conf;
  n.iou = o.iou;
  n.max_det = o.max_det;
  n.agnostic = o.agnostic;
  return n;
}

image::Image from_view(const ImageView& v, size_t index) {
  if (!v.data) fail("detect: image ", index, " has no pixels (null data)");
  if (v.width <= 0 || v.height <= 0) fail("detect: image ", index, " is ", v.width, "x", v.height, " pixels");
  const size_t row = static_cast<size_t>(v.width) * 3;
  const size_t stride = v.row_stride ? v.row_stride : row;
  if (stride < row) fail("detect: image ", index, " has a row stride of ", stride, " bytes, less than width * 3 = ", row);
  image::Image img{v.width, v.height, std::vector<uint8_t>(row * static_cast<size_t>(v.height))};
  for (int y = 0; y < v.height; ++y) {
    const uint8_t* src = v.data + static_cast<size_t>(y) * stride;
    uint8_t* dst = img.bgr.data() + static_cast<size_t>(y) * row;
    if (v.order == PixelOrder::BGR) {
      std::copy(src, src + row, dst);
    } else {
      for (size_t x = 0; x < row; x += 3) dst[x] = src[x + 2], dst[x + 1] = src[x + 1], dst[x + 2] = src[x];
    }
  }
  return img;
}
}  // namespace

struct Detector::Impl {
  std::unique_ptr<InferenceEngine> engine;
  yolo::HeadKind head = yolo::HeadKind::Auto;
  std::vector<std::string> names;
  int num_classes = 0;
  int64_t batch = 1, imgsz = 0;
  std::mutex mutex;  // one execution context: one batch at a time

  Impl(std::unique_ptr<InferenceEngine> e, yolo::HeadKind h) : engine(std::move(e)) {
    KESTREL_CHECK(engine != nullptr, "Detector: no engine");
    const Shape in = engine->input_shape(), out = engine->output_shape();
    if (in.size() != 4 || in[1] != 3 || in[2] != in[3])
      fail("the model input ", shape_str(in), " is not a square [B,3,S,S] image batch: not a YOLO detector");
    if (out.size() != 3 || out[0] != in[0])
      fail("the model output ", shape_str(out), " is not a [B, X, Y] detection head: not a YOLO detector");
    batch = in[0];
    imgsz = in[2];
    head = h == yolo::HeadKind::Auto ? yolo::detect_head(out) : h;
    num_classes = static_cast<int>(head == yolo::HeadKind::V8 ? out[1] - 4 : out[2] - 5);
    KESTREL_CHECK(num_classes >= 1, "the model output ", shape_str(out), " has no class channels for a ",
                  yolo::head_kind_name(head), " head");
    names = pipeline::class_names(engine->metadata(), num_classes);
  }

  // Runs `n` images through the engine in batches. `load(i, storage)` returns image i: a pointer to the
  // caller's image, or to `storage` after decoding into it (timed as part of preprocessing).
  std::vector<Detections> run(size_t n, const std::function<const image::Image*(size_t, image::Image&)>& load,
                              const DetectOptions& options) {
    const yolo::NmsOptions nms = nms_options(options);
    std::vector<Detections> result(n);
    const size_t b = static_cast<size_t>(batch);
    std::vector<image::Image> storage(std::min(n, b));
    for (size_t first = 0; first < n; first += b) {
      const size_t count = std::min(b, n - first);
      std::vector<const image::Image*> ptrs(count);
      std::vector<double> load_ms(count);
      for (size_t i = 0; i < count; ++i) {
        const auto t0 = Clock::now();
        ptrs[i] = load(first + i, storage[i]);
        load_ms[i] = ms_since(t0);
      }
      StageTimes t;
      std::vector<std::vector<yolo::Box>> boxes;
      {
        std::lock_guard<std::mutex> lock(mutex);
        boxes = pipeline::detect_batch(*engine, std::span<const image::Image* const>(ptrs), head, nms, &t);
      }
      KESTREL_CHECK(boxes.size() == count, "internal: ", boxes.size(), " results for ", count, " images");
      for (size_t i = 0; i < count; ++i) {
        Detections& d = result[first + i];
        d.boxes = std::move(boxes[i]);
        d.width = ptrs[i]->width;
        d.height = ptrs[i]->height;
        const double share = 1.0 / static_cast<double>(count);  // the batch's stages, shared per image
        d.speed.preprocess_ms = load_ms[i] + t.preprocess_ms * share;
        d.speed.inference_ms = t.inference_ms * share;
        d.speed.postprocess_ms = t.postprocess_ms * share;
      }
    }
    return result;
  }
};

Detector::Detector(const std::string& model, const DetectorOptions& options)
    : impl_(std::make_unique<Impl>(open_model(model, options), options.head)) {}

Detector::Detector(std::unique_ptr<InferenceEngine> engine, yolo::HeadKind head)
    : impl_(std::make_unique<Impl>(std::move(engine), head)) {}

Detector::~Detector() = default;

std::vector<Detections> Detector::detect(const std::vector<std::string>& paths, const DetectOptions& options) {
  return impl_->run(
      paths.size(),
      [&](size_t i, image::Image& storage) {
        storage = image::read_image(paths[i]);
        return &storage;
      },
      options);
}

std::vector<Detections> Detector::detect_encoded(std::span<const std::span<const uint8_t>> images,
                                                 const DetectOptions& options) {
  return impl_->run(
      images.size(),
      [&](size_t i, image::Image& storage) {
        storage = image::decode_image(images[i].data(), images[i].size(), "image " + std::to_string(i));
        return &storage;
      },
      options);
}

std::vector<Detections> Detector::detect(std::span<const ImageView> images, const DetectOptions& options) {
  return impl_->run(
      images.size(),
      [&](size_t i, image::Image& storage) {
        storage = from_view(images[i], i);
        return &storage;
      },
      options);
}

std::vector<Detections> Detector::detect(std::span<const image::Image> images, const DetectOptions& options) {
  return impl_->run(
      images.size(),
      [&](size_t i, image::Image&) {
        if (images[i].empty() || images[i].bgr.size() != static_cast<size_t>(images[i].width) * images[i].height * 3)
          fail("detect: image ", i, " is empty or its pixel buffer does not match ", images[i].width, "x",
               images[i].height, "x3");
        return &images[i];
      },
      options);
}

const std::vector<std::string>& Detector::names() const { return impl_->names; }
int Detector::num_classes() const { return impl_->num_classes; }
int64_t Detector::batch() const { return impl_->batch; }
int64_t Detector::imgsz() const { return impl_->imgsz; }
std::string Detector::description() const { return impl_->engine->description(); }

}  // namespace kestrel
