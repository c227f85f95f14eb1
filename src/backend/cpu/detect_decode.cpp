// kestrel.DetectV8 / kestrel.DetectV5: the in-graph box decode of the YOLO heads as single ops. Each
// follows the exact arithmetic (and operation order) of the ONNX sub-graph it replaces, so the
// optimizer's numeric check against the original sub-graph holds to float rounding; see
// src/passes/fuse_detect_head.cpp for how the graph form is matched.
#include <cmath>
#include <vector>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

namespace {
float sigmoid(float v) { return 1.f / (1.f + std::exp(-v)); }  // as k_sigmoid

struct Level {
  const float* data;
  int64_t h, w, stride, offset;  // offset: index of the level's first anchor
};

std::vector<Level> levels(const Node& n, Inputs in, int64_t per_cell) {
  const auto strides = n.attrs.ints("strides");
  KESTREL_CHECK(strides.size() == in.size(), n.op, " node '", n.name, "': one stride per head map");
  std::vector<Level> ls;
  int64_t offset = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const HostTensor& f = *in[i];
    KESTREL_CHECK(f.dtype() == DType::F32 && f.rank() == 4, n.op, " node '", n.name, "': float32 NCHW head maps only");
    ls.push_back({f.data<float>(), f.dim(2), f.dim(3), strides[i], offset});
    offset += per_cell * f.dim(2) * f.dim(3);
  }
  return ls;
}
}  // namespace

// Output [B, 4 + nc, A], A = sum H_i W_i, anchors in level order then row-major (y, x).
void k_detect_v8(const Node& n, Inputs in, Outputs out) {
  const int64_t R = n.attrs.i("reg_max", 16), nc = n.attrs.i("num_classes");
  KESTREL_CHECK(R > 0 && R <= 256, "kestrel.DetectV8 node '", n.name, "': reg_max ", R, " outside 1..256");
  const std::vector<Level> ls = levels(n, in, 1);
  HostTensor& y = out[0];
  const int64_t B = y.dim(0), A = y.dim(2), C = 4 * R + nc;
  float* py = y.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (const Level& l : ls) {
      const int64_t hw = l.h * l.w;
      const float* f = l.data + b * C * hw;
      const float stride = static_cast<float>(l.stride);
#pragma omp parallel for schedule(static)
      for (int64_t cell = 0; cell < hw; ++cell) {
        const int64_t a = l.offset + cell;
        // DFL: softmax over the reg_max bins of each side, then the expectation with weights 0..R-1
        // (the graph's Softmax followed by the fixed 1x1 conv).
        float d[4];
        for (int64_t side = 0; side < 4; ++side) {
          const float* bins = f + side * R * hw + cell;
          float mx = -INFINITY;
          for (int64_t j = 0; j < R; ++j) mx = std::max(mx, bins[j * hw]);
          float e[256];
          float sum = 0.f;
          for (int64_t j = 0; j < R; ++j) sum += (e[j] = std::exp(bins[j * hw] - mx));
          float acc = 0.f;
          for (int64_t j = 0; j < R; ++j) acc += (e[j] / sum) * static_cast<float>(j);
          d[side] = acc;
        }
        // dist2bbox as the exported graph computes it: x1y1 = anchor - lt, x2y2 = anchor + rb,
        // centre = (x1y1 + x2y2) / 2, size = x2y2 - x1y1, all times the level stride.
        const float ax = static_cast<float>(cell % l.w) + 0.5f, ay = static_cast<float>(cell / l.w) + 0.5f;
        const float x1 = ax - d[0], y1 = ay - d[1], x2 = ax + d[2], y2 = ay + d[3];
        float* o = py + b * (4 + nc) * A + a;
        o[0 * A] = ((x1 + x2) / 2.f) * stride;
        o[1 * A] = ((y1 + y2) / 2.f) * stride;
        o[2 * A] = (x2 - x1) * stride;
        o[3 * A] = (y2 - y1) * stride;
        for (int64_t c = 0; c < nc; ++c) o[(4 + c) * A] = sigmoid(f[(4 * R + c) * hw + cell]);
      }
    }
}

// Output [B, sum na H_i W_i, 5 + nc], rows in (level, anchor, y, x) order.
void k_detect_v5(const Node& n, Inputs in, Outputs out) {
  const int64_t nc = n.attrs.i("num_classes"), na = n.attrs.i("num_anchors", 3), no = 5 + nc;
  const std::vector<float> anchors = n.attrs.floats("anchors");  // per level, per anchor: (w, h) in pixels
  const std::vector<Level> ls = levels(n, in, na);
  HostTensor& y = out[0];
  const int64_t B = y.dim(0), rows = y.dim(1);
  float* py = y.data<float>();
  for (int64_t b = 0; b < B; ++b)
    for (size_t li = 0; li < ls.size(); ++li) {
      const Level& l = ls[li];
      const int64_t hw = l.h * l.w;
      const float* f = l.data + b * na * no * hw;
      const float stride = static_cast<float>(l.stride);
#pragma omp parallel for schedule(static)
      for (int64_t ac = 0; ac < na * hw; ++ac) {
        const int64_t a = ac / hw, cell = ac % hw;
        const float* v = f + a * no * hw + cell;
        float* o = py + (b * rows + l.offset + ac) * no;
        // The export's grid buffer holds (x - 0.5, y - 0.5), added to 2s: keep that order of operations.
        const float gx = static_cast<float>(cell % l.w) - 0.5f, gy = static_cast<float>(cell / l.w) - 0.5f;
        o[0] = (sigmoid(v[0]) * 2.f + gx) * stride;
        o[1] = (sigmoid(v[hw]) * 2.f + gy) * stride;
        const float sw = sigmoid(v[2 * hw]) * 2.f, sh = sigmoid(v[3 * hw]) * 2.f;
        o[2] = (sw * sw) * anchors[(li * na + a) * 2 + 0];
        o[3] = (sh * sh) * anchors[(li * na + a) * 2 + 1];
        for (int64_t c = 4; c < no; ++c) o[c] = sigmoid(v[c * hw]);
      }
    }
}

}  // namespace kestrel::cpu
