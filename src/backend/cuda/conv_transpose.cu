// ConvTranspose (2-D, grouped, dilated), float32, any strides: one thread per output element gathers
// the input positions that scatter into it. YOLO models do not use it; it is here so every op the CPU
// backend runs also runs on the GPU.
#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

struct DeconvArgs {
  int N, C, H, W, M, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, group;
  long long xs[4], ys[4];
  int xdt, ydt, wdt;
};

__global__ void deconv_kernel(const void* x, const void* w, const float* bias, void* y, const __grid_constant__ DeconvArgs a) {
  const long long total = (long long)a.N * a.M * a.OH * a.OW;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int ox = static_cast<int>(i % a.OW);
  long long t = i / a.OW;
  const int oy = static_cast<int>(t % a.OH);
  t /= a.OH;
  const int m = static_cast<int>(t % a.M), n = static_cast<int>(t / a.M);
  const int mg = a.M / a.group, cg = a.C / a.group, g = m / mg, mm = m % mg;
  float acc = bias ? bias[m] : 0.f;
  for (int c = g * cg; c < (g + 1) * cg; ++c)
    for (int ky = 0; ky < a.KH; ++ky) {
      const int ny = oy + a.ph - ky * a.dh;
      if (ny < 0 || ny % a.sh) continue;
      const int iy = ny / a.sh;
      if (iy >= a.H) continue;
      for (int kx = 0; kx < a.KW; ++kx) {
        const int nx = ox + a.pw - kx * a.dw;
        if (nx < 0 || nx % a.sw) continue;
        const int ix = nx / a.sw;
        if (ix >= a.W) continue;
        // W is [C, M/group, KH, KW].
        const long long wi = (((long long)c * mg + mm) * a.KH + ky) * a.KW + kx;
        acc += load_as_float(x, a.xdt, n * a.xs[0] + c * a.xs[1] + iy * a.xs[2] + ix * a.xs[3]) * load_as_float(w, a.wdt, wi);
      }
    }
  store_from_float(y, a.ydt, n * a.ys[0] + m * a.ys[1] + oy * a.ys[2] + ox * a.ys[3], acc);
}

class DeconvLayer : public Layer {
 public:
  explicit DeconvLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& w = *s.in[1];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(x.rank() == 4, "ConvTranspose node '", s.name, "': 2-D only");
    KESTREL_CHECK(w.dense_row_major(), "internal: ConvTranspose weights must be dense");
    has_bias_ = s.in.size() > 2 && s.in[2];
    KESTREL_CHECK(!has_bias_ || s.in[2]->dtype == DType::F32, "internal: ConvTranspose bias must be float32");
    a_ = {};
    a_.N = static_cast<int>(x.shape[0]);
    a_.C = static_cast<int>(x.shape[1]);
    a_.H = static_cast<int>(x.shape[2]);
    a_.W = static_cast<int>(x.shape[3]);
    a_.M = static_cast<int>(y.shape[1]);
    a_.OH = static_cast<int>(y.shape[2]);
    a_.OW = static_cast<int>(y.shape[3]);
    const auto kernel = s.attrs.ints("kernel_shape", std::vector<int64_t>{w.shape[2], w.shape[3]});
    const auto st = s.attrs.ints("strides", std::vector<int64_t>{1, 1});
    const auto d = s.attrs.ints("dilations", std::vector<int64_t>{1, 1});
    const auto pads = s.attrs.ints("pads", std::vector<int64_t>{0, 0, 0, 0});
    a_.KH = static_cast<int>(kernel[0]);
    a_.KW = static_cast<int>(kernel[1]);
    a_.sh = static_cast<int>(st[0]);
    a_.sw = static_cast<int>(st[1]);
    a_.dh = static_cast<int>(d[0]);
    a_.dw = static_cast<int>(d[1]);
    a_.ph = static_cast<int>(pads[0]);
    a_.pw = static_cast<int>(pads[1]);
    a_.group = static_cast<int>(s.attrs.i("group", 1));
    for (int k = 0; k < 4; ++k) {
      a_.xs[k] = x.strides[k];
      a_.ys[k] = y.strides[k];
    }
    a_.xdt = static_cast<int>(x.dtype);
    a_.ydt = static_cast<int>(y.dtype);
    a_.wdt = static_cast<int>(w.dtype);
    total_ = y.numel();
  }
  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!total_) return;
    deconv_kernel<<<static_cast<unsigned>((total_ + 127) / 128), 128, 0, stream>>>(
        io.in[0], io.in[1], has_bias_ ? static_cast<const float*>(io.in[2]) : nullptr, io.out[0], a_);
    KLAUNCH("conv_transpose");
  }

 private:
  DeconvArgs a_;
  bool has_bias_ = false;
  long long total_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_conv_transpose(const LayerSpec& s) { return std::make_unique<DeconvLayer>(s); }

}  // namespace kestrel::cuda
