// Detection-head layouts and candidate extraction (the part of non_max_suppression before NMS).
#include <cmath>
#include <vector>

#include "kestrel/error.h"
#include "kestrel/yolo.h"

namespace kestrel::yolo {

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Ultralytics' xywh2xyxy, in float32 like the torch tensors it runs on.
Box corners(float cx, float cy, float w, float h, float score, int cls) {
  const float hw = w / 2, hh = h / 2;
  return Box{cx - hw, cy - hh, cx + hw, cy + hh, score, cls};
}

int64_t class_count(int64_t available, const NmsOptions& opts, const char* what) {
  if (opts.num_classes <= 0) return available;
  KESTREL_CHECK(opts.num_classes <= available, "NmsOptions::num_classes = ", opts.num_classes, " but the ", what,
                " head has only ", available, " class channels");
  return opts.num_classes;
}

}  // namespace

const char* head_kind_name(HeadKind kind) {
  switch (kind) {
    case HeadKind::Auto: return "auto";
    case HeadKind::V8: return "yolov8";
    case HeadKind::V5: return "yolov5";
  }
  return "?";
}

HeadKind detect_head(const std::vector<int64_t>& shape) {
  if (shape.size() != 3)
    fail("output ", shape_string(shape), " is not a detection head: expected rank 3 [batch, channels, anchors] "
         "or [batch, anchors, channels]");
  const int64_t b = shape[0], x = shape[1], y = shape[2];
  if (b < 1 || x < 1 || y < 1) fail("output ", shape_string(shape), " is not a detection head: empty dimension");
  if (x < y && x - 4 >= 1) return HeadKind::V8;
  if (y < x && y - 5 >= 1) return HeadKind::V5;
  fail("output ", shape_string(shape), " is not a detection head: need [B, 4+nc, anchors] (YOLOv8/11) or "
       "[B, anchors, 5+nc] (YOLOv5) with fewer channels than anchors");
}

NmsOptions NmsOptions::validation(HeadKind kind) {
  NmsOptions o;
  o.conf = 0.001f;
  o.iou = kind == HeadKind::V5 ? 0.6 : 0.7;  // YOLOv5 val.py default vs Ultralytics' default
  o.max_det = 300;
  o.multi_label = true;
  return o;
}

NmsOptions NmsOptions::prediction() {
  NmsOptions o;
  o.conf = 0.25f;
  o.iou = 0.7;
  o.max_det = 300;
  o.multi_label = false;
  return o;
}

std::vector<Box> decode_candidates(const float* pred, int64_t channels, int64_t anchors, HeadKind kind,
                                   const NmsOptions& opts) {
  KESTREL_CHECK(kind == HeadKind::V8 || kind == HeadKind::V5, "decode_candidates: head kind must be V8 or V5");
  const float conf = opts.conf;
  std::vector<Box> out;

  if (kind == HeadKind::V8) {
    // [4 + nc, A], channel-major. Candidates: max class score > conf (torch amax propagates NaN, and a
    // NaN maximum is never > conf, so an anchor with any NaN score is dropped).
    KESTREL_CHECK(channels >= 5, "YOLOv8-style head needs at least 5 channels (4 box + classes), got ", channels);
    const int64_t nc = class_count(channels - 4, opts, "YOLOv8-style");
    const bool multi = opts.multi_label && nc > 1;
    std::vector<float> best(anchors, -INFINITY);
    std::vector<int> best_cls(anchors, 0);
    std::vector<char> has_nan(anchors, 0);
    for (int64_t c = 0; c < nc; ++c) {  // class-major loop: contiguous reads
      const float* row = pred + (4 + c) * anchors;
      for (int64_t a = 0; a < anchors; ++a) {
        const float s = row[a];
        if (s > best[a]) {  // strict: the first maximal class wins, as torch.max returns
          best[a] = s;
          best_cls[a] = static_cast<int>(c);
        } else if (std::isnan(s)) {
          has_nan[a] = 1;
        }
      }
    }
    for (int64_t a = 0; a < anchors; ++a) {
      if (has_nan[a] || !(best[a] > conf)) continue;
      const float cx = pred[a], cy = pred[anchors + a], w = pred[2 * anchors + a], h = pred[3 * anchors + a];
      if (!multi) {
        out.push_back(corners(cx, cy, w, h, best[a], best_cls[a]));
        continue;
      }
      for (int64_t c = 0; c < nc; ++c) {
        const float s = pred[(4 + c) * anchors + a];
        if (s > conf) out.push_back(corners(cx, cy, w, h, s, static_cast<int>(c)));
      }
    }
    return out;
  }

  // V5: [A, 5 + nc], anchor-major. YOLOv5 filters on objectness first, then scores = obj * cls.
  KESTREL_CHECK(channels >= 6, "YOLOv5-style head needs at least 6 channels (4 box + obj + classes), got ", channels);
  const int64_t nc = class_count(channels - 5, opts, "YOLOv5-style");
  const bool multi = opts.multi_label && nc > 1;
  for (int64_t a = 0; a < anchors; ++a) {
    const float* row = pred + a * channels;
    const float obj = row[4];
    if (!(obj > conf)) continue;
    if (multi) {
      for (int64_t c = 0; c < nc; ++c) {
        const float s = row[5 + c] * obj;
        if (s > conf) out.push_back(corners(row[0], row[1], row[2], row[3], s, static_cast<int>(c)));
      }
    } else {
      float best = row[5] * obj;
      int best_c = 0;
      for (int64_t c = 1; c < nc; ++c) {
        const float s = row[5 + c] * obj;
        if (s > best) best = s, best_c = static_cast<int>(c);
      }
      if (best > conf) out.push_back(corners(row[0], row[1], row[2], row[3], best, best_c));
    }
  }
  return out;
}

std::vector<std::vector<Box>> postprocess(const float* output, const std::vector<int64_t>& shape, HeadKind kind,
                                          const NmsOptions& opts) {
  KESTREL_CHECK(output != nullptr, "postprocess: output buffer is null");
  if (kind == HeadKind::Auto) {
    kind = detect_head(shape);  // validates rank, extents and channel counts
  } else if (shape.size() != 3 || shape[0] < 1 || shape[1] < 1 || shape[2] < 1) {
    fail("output ", shape_string(shape), " is not a detection head: expected rank 3 with non-empty dimensions");
  }
  const int64_t batch = shape[0];
  const int64_t channels = kind == HeadKind::V8 ? shape[1] : shape[2];
  const int64_t anchors = kind == HeadKind::V8 ? shape[2] : shape[1];
  if (kind == HeadKind::V8 && channels < 5)
    fail("output ", shape_string(shape), " cannot be a YOLOv8-style head: fewer than 5 channels in dim 1");
  if (kind == HeadKind::V5 && channels < 6)
    fail("output ", shape_string(shape), " cannot be a YOLOv5-style head: fewer than 6 channels in dim 2");
  std::vector<std::vector<Box>> result(batch);
  for (int64_t b = 0; b < batch; ++b)
    result[b] = nms(decode_candidates(output + b * channels * anchors, channels, anchors, kind, opts), opts);
  return result;
}

}  // namespace kestrel::yolo
