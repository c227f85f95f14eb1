// Class-aware greedy NMS with torchvision.ops.nms semantics, and un-letterboxing of boxes.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "kestrel/error.h"
#include "kestrel/yolo.h"

namespace kestrel::yolo {

namespace {

// Greedy suppression over `order` (indices into the offset boxes, best score first), as
// torchvision's CPU kernel does it: float32 areas and IoU, `IoU > threshold` with the threshold in
// double. Marks survivors in `keep`.
void greedy(const int* order, size_t count, const std::vector<std::array<float, 4>>& b,
            const std::vector<float>& area, double iou_thres, std::vector<char>& keep) {
  std::vector<char> suppressed(count, 0);
  for (size_t i = 0; i < count; ++i) {
    if (suppressed[i]) continue;
    const int bi = order[i];
    keep[bi] = 1;
    const float ix1 = b[bi][0], iy1 = b[bi][1], ix2 = b[bi][2], iy2 = b[bi][3], iarea = area[bi];
    for (size_t j = i + 1; j < count; ++j) {
      if (suppressed[j]) continue;
      const int bj = order[j];
      const float xx1 = std::max(ix1, b[bj][0]), yy1 = std::max(iy1, b[bj][1]);
      const float xx2 = std::min(ix2, b[bj][2]), yy2 = std::min(iy2, b[bj][3]);
      const float w = std::max(0.f, xx2 - xx1), h = std::max(0.f, yy2 - yy1);
      const float inter = w * h;
      const float ovr = inter / (iarea + area[bj] - inter);
      if (static_cast<double>(ovr) > iou_thres) suppressed[j] = 1;
    }
  }
}

}  // namespace

std::vector<Box> nms(std::vector<Box> cand, const NmsOptions& opts) {
  KESTREL_CHECK(opts.max_det >= 0 && opts.max_nms >= 0, "NMS limits must not be negative");
  if (cand.empty() || opts.max_det == 0) return {};

  // Best first. A stable sort: equal scores keep candidate order (anchor, then class), which is what
  // torchvision's CPU nms (stable descending sort) does with the candidates Ultralytics hands it.
  // Ultralytics' own pre-sort when n > max_nms is torch.argsort, whose tie order is unspecified;
  // ties there can only change which of two equal-score boxes is cut at the 30000th place.
  std::vector<int> order;
  order.reserve(cand.size());
  for (size_t i = 0; i < cand.size(); ++i)
    if (!std::isnan(cand[i].score)) order.push_back(static_cast<int>(i));  // NaN never passes conf anyway
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return cand[a].score > cand[b].score; });
  if (order.size() > static_cast<size_t>(opts.max_nms)) order.resize(opts.max_nms);

  // Class offset (`boxes + cls * max_wh` in float32) so boxes of different classes never overlap. The
  // offset boxes are what IoU is computed on, rounding included.
  const size_t n = cand.size();
  std::vector<std::array<float, 4>> ob(n);
  std::vector<float> area(n);
  float lo = INFINITY, hi = -INFINITY;
  bool finite = true;
  for (int i : order) {
    const Box& c = cand[i];
    const float off = opts.agnostic ? 0.f : static_cast<float>(c.cls) * opts.max_wh;
    ob[i] = {c.x1 + off, c.y1 + off, c.x2 + off, c.y2 + off};
    area[i] = (ob[i][2] - ob[i][0]) * (ob[i][3] - ob[i][1]);
    for (float v : {c.x1, c.y1, c.x2, c.y2}) {
      finite = finite && std::isfinite(v);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }

  std::vector<char> keep(n, 0);
  // When every coordinate lies within half the class offset, boxes of different classes are far
  // apart and their IoU is exactly 0, so NMS per class gives the same survivors as one global pass
  // over the offset boxes, without its O(n^2) cross-class comparisons.
  const bool per_class = !opts.agnostic && finite && opts.iou >= 0 && (hi - lo) < 0.5 * opts.max_wh;
  if (per_class) {
    // Group by class, keeping score order inside each group.
    std::vector<int> by_class = order;
    std::stable_sort(by_class.begin(), by_class.end(), [&](int a, int b) { return cand[a].cls < cand[b].cls; });
    for (size_t s = 0; s < by_class.size();) {
      size_t e = s + 1;
      while (e < by_class.size() && cand[by_class[e]].cls == cand[by_class[s]].cls) ++e;
      greedy(by_class.data() + s, e - s, ob, area, opts.iou, keep);
      s = e;
    }
  } else {
    greedy(order.data(), order.size(), ob, area, opts.iou, keep);
  }

  std::vector<Box> out;
  for (int i : order) {
    if (!keep[i]) continue;
    out.push_back(cand[i]);
    if (out.size() == static_cast<size_t>(opts.max_det)) break;
  }
  return out;
}

void scale_boxes(std::vector<Box>& boxes, const LetterboxInfo& info) {
  KESTREL_CHECK(info.gain > 0, "scale_boxes: letterbox gain must be positive");
  // Float32 throughout, as Ultralytics' scale_boxes on torch tensors (the gain becomes a float32).
  const float gain = static_cast<float>(info.gain);
  const float px = static_cast<float>(info.pad_left), py = static_cast<float>(info.pad_top);
  const float w = static_cast<float>(info.src_w), h = static_cast<float>(info.src_h);
  for (Box& b : boxes) {
    b.x1 = std::clamp((b.x1 - px) / gain, 0.f, w);
    b.y1 = std::clamp((b.y1 - py) / gain, 0.f, h);
    b.x2 = std::clamp((b.x2 - px) / gain, 0.f, w);
    b.y2 = std::clamp((b.y2 - py) / gain, 0.f, h);
  }
}

}  // namespace kestrel::yolo
