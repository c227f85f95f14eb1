// Ultralytics LetterBox + OpenCV INTER_LINEAR resize, reproduced bit for bit.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <vector>

#include "kestrel/error.h"
#include "kestrel/yolo.h"
#include "resize_plan.h"

namespace kestrel::yolo {

namespace {

using image::Image;

using detail::kResizeCoefScale;
using detail::ResizeTap;

// saturate_cast<short>(float): cvRound is round-half-to-even under the default FP environment.
int16_t round_coef(float v) {
  const long r = std::lrint(v);
  return static_cast<int16_t>(std::clamp<long>(r, -32768, 32767));
}

// Per output coordinate: source index and the two weights, as OpenCV's resize table builder makes
// them (float arithmetic on purpose: the weights depend on float rounding).
std::vector<ResizeTap> build_taps(int src_len, int dst_len, double scale, bool clamp_weights, int* first_border) {
  std::vector<ResizeTap> taps(dst_len);
  *first_border = dst_len;
  for (int d = 0; d < dst_len; ++d) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int s = static_cast<int>(std::floor(f));
    f -= static_cast<float>(s);
    if (clamp_weights) {
      // Horizontal table only: outside the image the weight collapses onto the edge pixel.
      if (s < 0) f = 0.f, s = 0;
      if (s + 1 >= src_len) {
        *first_border = std::min(*first_border, d);
        if (s >= src_len - 1) f = 0.f, s = src_len - 1;
      }
    }
    taps[d] = {s, round_coef((1.f - f) * kResizeCoefScale), round_coef(f * kResizeCoefScale)};
  }
  return taps;
}

// Horizontal pass of one source row into int sums (255 * 2048 fits easily).
void hresize_row(const uint8_t* src, const std::vector<ResizeTap>& xt, int xmax, int* dst) {
  const int dw = static_cast<int>(xt.size());
  for (int dx = 0; dx < dw; ++dx) {
    const uint8_t* s = src + xt[dx].src * 3;
    int* d = dst + dx * 3;
    if (dx < xmax) {
      const int a0 = xt[dx].w0, a1 = xt[dx].w1;
      d[0] = s[0] * a0 + s[3] * a1;
      d[1] = s[1] * a0 + s[4] * a1;
      d[2] = s[2] * a0 + s[5] * a1;
    } else {  // right border: OpenCV multiplies the edge pixel by "one" instead of reading past it
      d[0] = s[0] * kResizeCoefScale;
      d[1] = s[1] * kResizeCoefScale;
      d[2] = s[2] * kResizeCoefScale;
    }
  }
}

// cv::resize turns an exact 2x downscale with INTER_LINEAR into INTER_AREA's fast path: the rounded
// mean of each 2x2 block.
Image area_half(const Image& src, int dw, int dh) {
  Image dst;
  dst.width = dw;
  dst.height = dh;
  dst.bgr.resize(static_cast<size_t>(dw) * dh * 3);
  for (int y = 0; y < dh; ++y) {
    const uint8_t* r0 = src.pixel(0, 2 * y);
    const uint8_t* r1 = src.pixel(0, 2 * y + 1);
    uint8_t* d = dst.pixel(0, y);
    for (int x = 0; x < dw * 3; ++x) {
      const int i = (x / 3) * 6 + x % 3;
      d[x] = static_cast<uint8_t>((r0[i] + r0[i + 3] + r1[i] + r1[i + 3] + 2) >> 2);
    }
  }
  return dst;
}

// Python's round(): ties to even, which std::nearbyint gives in the default rounding mode.
int py_round(double v) { return static_cast<int>(std::nearbyint(v)); }

}  // namespace

detail::ResizePlan detail::resize_plan(int sw, int sh, int dw, int dh) {
  KESTREL_CHECK(sw > 0 && sh > 0 && dw > 0 && dh > 0, "resize: sizes must be positive, got ", sw, "x", sh, " -> ", dw, "x", dh);
  ResizePlan plan;
  if (sw == dw && sh == dh) return plan;
  const double inv_scale_x = static_cast<double>(dw) / sw, inv_scale_y = static_cast<double>(dh) / sh;
  const double scale_x = 1.0 / inv_scale_x, scale_y = 1.0 / inv_scale_y;
  const bool integer_scale = std::abs(scale_x - std::lrint(scale_x)) < DBL_EPSILON &&
                             std::abs(scale_y - std::lrint(scale_y)) < DBL_EPSILON;
  if (integer_scale && std::lrint(scale_x) == 2 && std::lrint(scale_y) == 2) {
    plan.mode = ResizeMode::AreaHalf;
    return plan;
  }
  plan.mode = ResizeMode::Linear;
  int unused = 0;
  plan.xt = build_taps(sw, dw, scale_x, true, &plan.xmax);
  // Vertically OpenCV keeps the unclamped weights and clamps the row index instead.
  plan.yt = build_taps(sh, dh, scale_y, false, &unused);
  return plan;
}

Image resize_linear(const Image& src, int dw, int dh) {
  KESTREL_CHECK(!src.empty() && src.bgr.size() == static_cast<size_t>(src.width) * src.height * 3,
                "resize_linear: source image is empty or its buffer does not match its size");
  KESTREL_CHECK(dw > 0 && dh > 0, "resize_linear: target size must be positive, got ", dw, "x", dh);
  const int sh = src.height;
  const detail::ResizePlan plan = detail::resize_plan(src.width, src.height, dw, dh);
  if (plan.mode == detail::ResizeMode::Copy) return src;
  if (plan.mode == detail::ResizeMode::AreaHalf) return area_half(src, dw, dh);
  const std::vector<ResizeTap>& xt = plan.xt;
  const std::vector<ResizeTap>& yt = plan.yt;
  const int xmax = plan.xmax;
  auto clip_row = [sh](int r) { return r < 0 ? 0 : (r >= sh ? sh - 1 : r); };

  Image dst;
  dst.width = dw;
  dst.height = dh;
  dst.bgr.resize(static_cast<size_t>(dw) * dh * 3);
  const size_t row_len = static_cast<size_t>(dw) * 3;
  // Two cached horizontal rows, reused while consecutive output rows share source rows.
  std::vector<int> buf[2] = {std::vector<int>(row_len), std::vector<int>(row_len)};
  int cached[2] = {-1, -1};
  auto hrow = [&](int r) -> const int* {
    for (int k = 0; k < 2; ++k)
      if (cached[k] == r) return buf[k].data();
    // Rows only move down, so the slot with the smaller (or no) row is never the one still needed.
    const int k = (cached[0] == -1 || cached[0] < cached[1]) ? 0 : 1;
    hresize_row(src.pixel(0, r), xt, xmax, buf[k].data());
    cached[k] = r;
    return buf[k].data();
  };

  for (int dy = 0; dy < dh; ++dy) {
    const int r0 = clip_row(yt[dy].src), r1 = clip_row(yt[dy].src + 1);
    const int* h0 = hrow(r0);
    const int* h1 = hrow(r1);
    const int b0 = yt[dy].w0, b1 = yt[dy].w1;
    uint8_t* d = dst.pixel(0, dy);
    for (size_t x = 0; x < row_len; ++x) d[x] = static_cast<uint8_t>(detail::vertical_linear(b0, h0[x], b1, h1[x]));
  }
  return dst;
}

LetterboxInfo letterbox_geometry(int src_w, int src_h, int size) {
  KESTREL_CHECK(src_w > 0 && src_h > 0, "letterbox: image size must be positive, got ", src_w, "x", src_h);
  KESTREL_CHECK(size > 0, "letterbox: target size must be positive, got ", size);
  LetterboxInfo info;
  info.src_w = src_w;
  info.src_h = src_h;
  info.dst = size;
  info.gain = std::min(static_cast<double>(size) / src_h, static_cast<double>(size) / src_w);
  // A 1-pixel-thin image could round to 0; keep one row/column rather than fail.
  info.new_w = std::clamp(py_round(src_w * info.gain), 1, size);
  info.new_h = std::clamp(py_round(src_h * info.gain), 1, size);
  const double dw = (size - info.new_w) / 2.0, dh = (size - info.new_h) / 2.0;
  info.pad_top = py_round(dh - 0.1);
  info.pad_bottom = py_round(dh + 0.1);
  info.pad_left = py_round(dw - 0.1);
  info.pad_right = py_round(dw + 0.1);
  return info;
}

Image letterbox_bgr(const Image& img, int size, LetterboxInfo* info_out) {
  const LetterboxInfo info = letterbox_geometry(img.width, img.height, size);
  const Image resized = (info.new_w == img.width && info.new_h == img.height)
                            ? Image()
                            : resize_linear(img, info.new_w, info.new_h);
  const Image& inner = resized.empty() ? img : resized;
  Image out = Image::filled(size, size, 114, 114, 114);
  for (int y = 0; y < info.new_h; ++y)
    std::copy_n(inner.pixel(0, y), static_cast<size_t>(info.new_w) * 3, out.pixel(info.pad_left, info.pad_top + y));
  if (info_out) *info_out = info;
  return out;
}

LetterboxInfo letterbox(const Image& img, int size, float* chw_out) {
  KESTREL_CHECK(chw_out != nullptr, "letterbox: output buffer is null");
  KESTREL_CHECK(!img.empty() && img.bgr.size() == static_cast<size_t>(img.width) * img.height * 3,
                "letterbox: image is empty or its buffer does not match its size");
  const LetterboxInfo info = letterbox_geometry(img.width, img.height, size);
  const Image resized = (info.new_w == img.width && info.new_h == img.height)
                            ? Image()
                            : resize_linear(img, info.new_w, info.new_h);
  const Image& inner = resized.empty() ? img : resized;

  // float(v) / 255 in float32, exactly what `torch.from_numpy(im).float() / 255` produces.
  float lut[256];
  for (int v = 0; v < 256; ++v) lut[v] = static_cast<float>(v) / 255.0f;
  const float pad = lut[114];
  const size_t plane = static_cast<size_t>(size) * size;
  for (int c = 0; c < 3; ++c) {
    const int bgr_index = 2 - c;  // output channel order is RGB
    float* p = chw_out + c * plane;
    for (int y = 0; y < size; ++y) {
      float* row = p + static_cast<size_t>(y) * size;
      const int sy = y - info.pad_top;
      if (sy < 0 || sy >= info.new_h) {
        std::fill_n(row, size, pad);
        continue;
      }
      std::fill_n(row, info.pad_left, pad);
      const uint8_t* s = inner.pixel(0, sy) + bgr_index;
      float* d = row + info.pad_left;
      for (int x = 0; x < info.new_w; ++x) d[x] = lut[s[3 * x]];
      std::fill(row + info.pad_left + info.new_w, row + size, pad);
    }
  }
  return info;
}

}  // namespace kestrel::yolo
