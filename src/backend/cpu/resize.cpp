// Resize, nearest and (bi)linear, with ONNX's coordinate transformation and nearest rounding modes.
#include <algorithm>
#include <cmath>

#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

namespace {
// Maps an output coordinate to the input coordinate (ONNX Resize, opset 11+).
double source_coord(const std::string& mode, double out_x, double scale, int64_t in_len, int64_t out_len) {
  if (mode == "asymmetric") return out_x / scale;
  if (mode == "align_corners") return out_len == 1 ? 0.0 : out_x * (in_len - 1) / static_cast<double>(out_len - 1);
  if (mode == "pytorch_half_pixel") return out_len > 1 ? (out_x + 0.5) / scale - 0.5 : 0.0;
  if (mode == "tf_half_pixel_for_nn") return (out_x + 0.5) / scale;
  return (out_x + 0.5) / scale - 0.5;  // half_pixel (default)
}

int64_t nearest_index(const std::string& mode, double x, int64_t len) {
  int64_t i;
  if (mode == "floor") i = static_cast<int64_t>(std::floor(x));
  else if (mode == "ceil") i = static_cast<int64_t>(std::ceil(x));
  else if (mode == "round_prefer_ceil") i = static_cast<int64_t>(std::floor(x + 0.5));
  else i = (x - std::floor(x) == 0.5) ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x));
  return std::clamp<int64_t>(i, 0, len - 1);
}
}  // namespace

void k_resize(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  HostTensor& y = out[0];
  KESTREL_CHECK(x.rank() == 4 && x.dtype() == DType::F32, "Resize node '", n.name, "': 4-D float32 only");
  const std::string mode = n.attrs.s("mode", "nearest");
  const std::string ctm = n.attrs.s("coordinate_transformation_mode", "half_pixel");
  const std::string nmode = n.attrs.s("nearest_mode", "round_prefer_floor");
  const int64_t NC = x.dim(0) * x.dim(1), H = x.dim(2), W = x.dim(3), OH = y.dim(2), OW = y.dim(3);
  // Scales as given (they may differ from out/in when sizes were floored), else derived from sizes.
  double sh = static_cast<double>(OH) / H, sw = static_cast<double>(OW) / W;
  std::vector<float> given = n.attrs.floats("kestrel_scales", std::vector<float>{});
  if (given.empty() && in.size() > 2 && in[2] && in[2]->numel() == 4) given = in[2]->to_f32();
  if (given.size() == 4) {
    sh = given[2];
    sw = given[3];
  }
  const float* px = x.data<float>();
  float* py = y.data<float>();
  if (mode == "nearest") {
    std::vector<int64_t> iy(OH), ix(OW);
    for (int64_t o = 0; o < OH; ++o) iy[o] = nearest_index(nmode, source_coord(ctm, o, sh, H, OH), H);
    for (int64_t o = 0; o < OW; ++o) ix[o] = nearest_index(nmode, source_coord(ctm, o, sw, W, OW), W);
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < NC; ++c)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) py[(c * OH + oy) * OW + ox] = px[(c * H + iy[oy]) * W + ix[ox]];
    return;
  }
  struct Tap { int64_t i0, i1; float w0, w1; };
  auto taps = [&](int64_t out_len, int64_t in_len, double scale) {
    std::vector<Tap> t(out_len);
    for (int64_t o = 0; o < out_len; ++o) {
      double s = std::clamp(source_coord(ctm, o, scale, in_len, out_len), 0.0, static_cast<double>(in_len - 1));
      const int64_t i0 = static_cast<int64_t>(std::floor(s)), i1 = std::min(i0 + 1, in_len - 1);
      const float f = static_cast<float>(s - i0);
      t[o] = {i0, i1, 1.f - f, f};
    }
    return t;
  };
  const auto ty = taps(OH, H, sh), tx = taps(OW, W, sw);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < NC; ++c)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        const float* p = px + c * H * W;
        const Tap a = ty[oy], b = tx[ox];
        py[(c * OH + oy) * OW + ox] = a.w0 * (b.w0 * p[a.i0 * W + b.i0] + b.w1 * p[a.i0 * W + b.i1]) +
                                      a.w1 * (b.w0 * p[a.i1 * W + b.i0] + b.w1 * p[a.i1 * W + b.i1]);
      }
}

}  // namespace kestrel::cpu
