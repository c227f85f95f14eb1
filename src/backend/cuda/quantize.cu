// kestrel.QuantizeInt8: the QuantizeLinear in front of INT8 convolutions. Reads an fp16 or fp32
// activation in any layout and writes int8 codes channels-last (the layout the INT8 convolutions read),
// q = clamp(rint(x / scale), -128, 127) exactly as the contract in include/kestrel/quant.h says
// (int8_code in int8_kernels.h: the IEEE quotient's rounding without a division per element).
//   generic   one thread per output element, channel fastest (coalesced int8 stores)
//   vec       fp16 channels-last source with 8-aligned channel counts and strides: 16 (or 8) channels
//             per thread, 16-byte loads and one 16- (8-) byte store (the common case inside a network)
#include <cmath>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/int8_kernels.h"
#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

struct QuantGeom {
  long long xs[4];  // element strides of x as [n, c, h, w]
  int N, C, H, W;
  long long ldy;    // y's pixel stride
  float scale, rcp;  // s_x and int8_reciprocal(s_x)
};

template <typename T>
__global__ void quantize_kernel(const __grid_constant__ QuantGeom g, const T* __restrict__ x, int8_t* __restrict__ y) {
  const long long total = (long long)g.N * g.H * g.W * g.C;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int c = static_cast<int>(i % g.C);
  const long long pix = i / g.C;
  const int w = static_cast<int>(pix % g.W);
  const long long t = pix / g.W;
  const int h = static_cast<int>(t % g.H), n = static_cast<int>(t / g.H);
  const float v = to_f(x[n * g.xs[0] + c * g.xs[1] + h * g.xs[2] + w * g.xs[3]]);
  y[pix * g.ldy + c] = int8_code(v, g.scale, g.rcp);
}

// V (8 or 16) channels per thread: x's channel stride 1, the other strides multiples of 8 and C of V,
// x 16-byte and y V-byte aligned, fewer than 2^31 groups (checked by the launcher). Index math in 32
// bits, and none per pixel where x's pixels are evenly spaced (a dense tensor or a channel slice of
// one): 64-bit divisions made this pass 3x slower than its memory traffic. Sixteen channels per
// thread (two 16-byte loads, one 16-byte store) keep more bytes in flight where C allows.
template <int V>
__global__ void quantize_vec_kernel(const __grid_constant__ QuantGeom g, const __half* __restrict__ x,
                                    int8_t* __restrict__ y, bool flat) {
  const unsigned cvs = static_cast<unsigned>(g.C) / V;
  const unsigned total = static_cast<unsigned>(g.N) * g.H * g.W * cvs;
  const unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const unsigned pix = i / cvs;
  const unsigned c = (i - pix * cvs) * V;
  long long xo;
  if (flat) {
    xo = pix * g.xs[3] + c;
  } else {
    const unsigned w = pix % g.W, t = pix / g.W;
    const unsigned h = t % g.H, n = t / g.H;
    xo = n * g.xs[0] + c + h * g.xs[2] + w * g.xs[3];
  }
  uint4 raw[V / 8];
#pragma unroll
  for (int r = 0; r < V / 8; ++r) raw[r] = __ldg(reinterpret_cast<const uint4*>(x + xo) + r);
  const __half2* hv = reinterpret_cast<const __half2*>(raw);
  unsigned word[V / 4] = {};
#pragma unroll
  for (int e = 0; e < V / 2; ++e) {
    const float2 f = __half22float2(hv[e]);
    const unsigned lo = static_cast<uint8_t>(int8_code(f.x, g.scale, g.rcp));
    const unsigned hi = static_cast<uint8_t>(int8_code(f.y, g.scale, g.rcp));
    word[e / 2] |= (lo | (hi << 8)) << ((e % 2) * 16);
  }
  int8_t* out = y + pix * g.ldy + c;
  if constexpr (V == 16)
    *reinterpret_cast<uint4*>(out) = make_uint4(word[0], word[1], word[2], word[3]);
  else
    *reinterpret_cast<uint2*>(out) = make_uint2(word[0], word[1]);
}

}  // namespace

void launch_quantize_int8(const void* x, bool x_half, const long long (&xs)[4], int N, int C, int H, int W, float scale,
                          int8_t* y, long long ldy, cudaStream_t stream) {
  const long long total = (long long)N * C * H * W;
  if (total == 0) return;
  QuantGeom g{};
  for (int d = 0; d < 4; ++d) g.xs[d] = xs[d];
  g.N = N, g.C = C, g.H = H, g.W = W;
  g.ldy = ldy;
  g.scale = scale;
  g.rcp = int8_reciprocal(scale);
  constexpr int kThreads = 256;
  const bool vec = x_half && xs[1] == 1 && C % 8 == 0 && xs[0] % 8 == 0 && xs[2] % 8 == 0 && xs[3] % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(x) % 16 == 0 && ldy % 8 == 0 && reinterpret_cast<uintptr_t>(y) % 8 == 0 &&
                   total / 8 < (1ll << 31);
  if (vec) {
    const bool flat = xs[2] == W * xs[3] && xs[0] == H * xs[2];
    const auto* xh = static_cast<const __half*>(x);
    if (C % 16 == 0 && ldy % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0)
      quantize_vec_kernel<16><<<blocks_for(total / 16, kThreads), kThreads, 0, stream>>>(g, xh, y, flat);
    else
      quantize_vec_kernel<8><<<blocks_for(total / 8, kThreads), kThreads, 0, stream>>>(g, xh, y, flat);
  } else if (x_half) {
    quantize_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream>>>(g, static_cast<const __half*>(x), y);
  } else {
    quantize_kernel<<<blocks_for(total, kThreads), kThreads, 0, stream>>>(g, static_cast<const float*>(x), y);
  }
  KLAUNCH("quantize_int8");
}

namespace {

// in[0] X (F16 or F32, rank 4, any strides); out[0] Y (I8, same shape, channels-last, pixel stride
// >= C so it may be a channel slice); attr "scale" (the activation's s_x).
class QuantizeInt8Layer : public Layer {
 public:
  explicit QuantizeInt8Layer(const LayerSpec& s) : Layer(s) {
    KESTREL_CHECK(s.in.size() == 1 && s.in[0] && s.out.size() == 1, "internal: ", s.op, " takes one input and one output");
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(x.rank() == 4, s.op, " node '", s.name, "': the input must be 4-D, got ", shape_str(x.shape));
    KESTREL_CHECK(x.dtype == DType::F16 || x.dtype == DType::F32, s.op, " node '", s.name,
                  "': the input must be float16 or float32, got ", dtype_name(x.dtype));
    KESTREL_CHECK(y.dtype == DType::I8, s.op, " node '", s.name, "': the output must be int8, got ", dtype_name(y.dtype));
    KESTREL_CHECK(y.shape == x.shape, s.op, " node '", s.name, "': output shape ", shape_str(y.shape),
                  " differs from the input's ", shape_str(x.shape));
    KESTREL_CHECK(y.channels_last_ld(&ldy_), s.op, " node '", s.name, "': the int8 output must be channels-last");
    scale_ = s.attrs.f("scale", 0.f);
    KESTREL_CHECK(std::isfinite(scale_) && scale_ > 0.f, s.op, " node '", s.name, "': scale must be positive, got ", scale_);
    half_ = x.dtype == DType::F16;
    for (int d = 0; d < 4; ++d) xs_[d] = x.strides[d];
    N_ = static_cast<int>(x.shape[0]);
    C_ = static_cast<int>(x.shape[1]);
    H_ = static_cast<int>(x.shape[2]);
    W_ = static_cast<int>(x.shape[3]);
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    launch_quantize_int8(io.in[0], half_, xs_, N_, C_, H_, W_, scale_, static_cast<int8_t*>(io.out[0]), ldy_, stream);
  }

 private:
  long long xs_[4] = {0, 0, 0, 0};
  int64_t ldy_ = 0;
  int N_ = 0, C_ = 0, H_ = 0, W_ = 0;
  float scale_ = 0.f;
  bool half_ = false;
};

}  // namespace

std::unique_ptr<Layer> make_quantize_int8(const LayerSpec& s) { return std::make_unique<QuantizeInt8Layer>(s); }

}  // namespace kestrel::cuda
