// MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool and the fused kestrel.SPPF, channels-last
// (unit channel stride, pixel stride ld: dense NHWC or a channel slice of a concat buffer). One thread
// per output element, channel fastest, so warps read and write contiguous channels. Max pools and SPPF
// also take int8 codes (INT8 engines): max commutes with quantization when input and output share a
// scale, so the kernels select codes exactly.
#include <cfloat>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"
#include "ir/op_registry.h"

namespace kestrel::cuda {

namespace {

struct PoolArgs {
  int N, C, H, W, OH, OW;
  long long ldx, ldy;
  int kh, kw, sh, sw, ph, pw, pe_h, pe_w, dh, dw;
  int is_max, count_pad;
  int total;
};

template <typename T>
__global__ void pool_kernel(const T* __restrict__ x, T* __restrict__ y, const __grid_constant__ PoolArgs a) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= a.total) return;
  const int c = i % a.C;
  int p = i / a.C;
  const int ox = p % a.OW;
  p /= a.OW;
  const int oy = p % a.OH;
  const int n = p / a.OH;
  float acc = a.is_max ? -FLT_MAX : 0.f;
  int count = 0;
  for (int ki = 0; ki < a.kh; ++ki) {
    const int iy = oy * a.sh - a.ph + ki * a.dh;
    for (int kj = 0; kj < a.kw; ++kj) {
      const int ix = ox * a.sw - a.pw + kj * a.dw;
      const bool inside = iy >= 0 && iy < a.H && ix >= 0 && ix < a.W;
      if (inside) {
        const float v = to_f(x[((long long)(n * a.H + iy) * a.W + ix) * a.ldx + c]);
        acc = a.is_max ? fmaxf(acc, v) : acc + v;
      }
      if (!a.is_max && (inside || (a.count_pad && iy < a.H + a.pe_h && ix < a.W + a.pe_w))) ++count;
    }
  }
  if (!a.is_max) acc = count ? acc / static_cast<float>(count) : 0.f;
  y[((long long)(n * a.OH + oy) * a.OW + ox) * a.ldy + c] = from_f<T>(acc);
}

template <typename T>
__global__ void global_pool_kernel(const T* __restrict__ x, T* __restrict__ y, int N, int C, int HW, long long ldx,
                                   long long ldy, int is_max) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N * C) return;
  const int c = i % C, n = i / C;
  float acc = is_max ? -FLT_MAX : 0.f;
  for (int p = 0; p < HW; ++p) {
    const float v = to_f(x[((long long)n * HW + p) * ldx + c]);
    acc = is_max ? fmaxf(acc, v) : acc + v;
  }
  if (!is_max) acc /= static_cast<float>(HW);
  y[(long long)n * ldy + c] = from_f<T>(acc);
}

// kestrel.SPPF: Concat([X, m(X), m(m(X)), m(m(m(X)))], 1) with m = MaxPool(k, stride 1, pad k/2).
// Stride-1 max pools with clipped windows compose into wider windows: m^j is a (2jr+1)^2 window with
// r = k/2, so the three pools are one pass over a (6r+1)^2 neighbourhood.
template <typename T>
__global__ void sppf_kernel(const T* __restrict__ x, T* __restrict__ y, int N, int C, int H, int W, long long ldx,
                            long long ldy, int r) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= N * H * W * C) return;
  const int c = i % C;
  const int pix = i / C;
  const int px = pix % W, py = (pix / W) % H, n = pix / (W * H);
  float m1 = -FLT_MAX, m2 = -FLT_MAX, m3 = -FLT_MAX;
  const int R = 3 * r;
  for (int dy = -R; dy <= R; ++dy) {
    const int iy = py + dy;
    if (iy < 0 || iy >= H) continue;
    const int ady = dy < 0 ? -dy : dy;
    for (int dx = -R; dx <= R; ++dx) {
      const int ix = px + dx;
      if (ix < 0 || ix >= W) continue;
      const int adx = dx < 0 ? -dx : dx;
      const int d = ady > adx ? ady : adx;
      const float v = to_f(x[((long long)(n * H + iy) * W + ix) * ldx + c]);
      m3 = fmaxf(m3, v);
      if (d <= 2 * r) m2 = fmaxf(m2, v);
      if (d <= r) m1 = fmaxf(m1, v);
    }
  }
  T* out = y + (long long)pix * ldy + c;
  out[0] = x[(long long)pix * ldx + c];
  out[C] = from_f<T>(m1);
  out[2 * C] = from_f<T>(m2);
  out[3 * C] = from_f<T>(m3);
}

__device__ __forceinline__ uint4 hmax8(uint4 a, uint4 b) {
  __half2* x = reinterpret_cast<__half2*>(&a);
  const __half2* y = reinterpret_cast<const __half2*>(&b);
#pragma unroll
  for (int e = 0; e < 4; ++e) x[e] = __hmax2(x[e], y[e]);
  return a;
}

// 16 bytes of channels as the vectorized SPPF kernels see them: element type, channels per uint4,
// the identity of max and a lane-wise max. Max pooling commutes with int8 quantization (one scale in
// and out), so INT8 engines pool the codes themselves with the per-byte signed max.
struct HalfLanes {
  using T = __half;
  static constexpr int kLanes = 8;
  static __device__ __forceinline__ uint4 lowest() { return make_uint4(0xFC00FC00u, 0xFC00FC00u, 0xFC00FC00u, 0xFC00FC00u); }  // -inf
  static __device__ __forceinline__ uint4 vmax(uint4 a, uint4 b) { return hmax8(a, b); }
};
struct Int8Lanes {
  using T = int8_t;
  static constexpr int kLanes = 16;
  static __device__ __forceinline__ uint4 lowest() { return make_uint4(0x80808080u, 0x80808080u, 0x80808080u, 0x80808080u); }  // -128
  static __device__ __forceinline__ uint4 vmax(uint4 a, uint4 b) {
    return make_uint4(__vmaxs4(a.x, b.x), __vmaxs4(a.y, b.y), __vmaxs4(a.z, b.z), __vmaxs4(a.w, b.w));
  }
};

// SPPF with 16 bytes of channels per thread (8 fp16 / 16 int8): the same windows, a 16-byte load per
// tap instead of one per channel.
template <typename L>
__global__ void sppf_vec_kernel(const typename L::T* __restrict__ x, typename L::T* __restrict__ y, int N, int C, int H, int W,
                                long long ldx, long long ldy, int r) {
  constexpr int V = L::kLanes;
  const int CV = C / V;
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= (long long)N * H * W * CV) return;
  const int cv = static_cast<int>(i % CV);
  const long long pix = i / CV;
  const int px = static_cast<int>(pix % W), py = static_cast<int>((pix / W) % H), n = static_cast<int>(pix / ((long long)W * H));
  uint4 m1 = L::lowest(), m2 = m1, m3 = m1;
  const int R = 3 * r;
  for (int dy = -R; dy <= R; ++dy) {
    const int iy = py + dy;
    if (iy < 0 || iy >= H) continue;
    const int ady = dy < 0 ? -dy : dy;
    for (int dx = -R; dx <= R; ++dx) {
      const int ix = px + dx;
      if (ix < 0 || ix >= W) continue;
      const int adx = dx < 0 ? -dx : dx;
      const int d = ady > adx ? ady : adx;
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(x + ((long long)(n * H + iy) * W + ix) * ldx + cv * V));
      m3 = L::vmax(m3, v);
      if (d <= 2 * r) m2 = L::vmax(m2, v);
      if (d <= r) m1 = L::vmax(m1, v);
    }
  }
  typename L::T* out = y + pix * ldy + cv * V;
  *reinterpret_cast<uint4*>(out) = __ldg(reinterpret_cast<const uint4*>(x + pix * ldx + cv * V));
  *reinterpret_cast<uint4*>(out + C) = m1;
  *reinterpret_cast<uint4*>(out + 2 * C) = m2;
  *reinterpret_cast<uint4*>(out + 3 * C) = m3;
}

// SPPF as the chained pools it is defined as, each separable (a row pass, then a column pass, with
// clipped windows: exactly MaxPool with -inf padding), on a whole plane of 16 bytes of channels in
// shared memory: a block per (image, channel group), 2 (2r+1) max operations per pixel and level
// instead of (6r+1)^2.
template <typename L>
__global__ void sppf_smem_kernel(const typename L::T* __restrict__ x, typename L::T* __restrict__ y, int C, int H, int W,
                                 long long ldx, long long ldy, int r) {
  constexpr int V = L::kLanes;
  extern __shared__ uint4 sp[];
  const int HW = H * W, CV = C / V;
  uint4* cur = sp;
  uint4* tmp = sp + HW;
  uint4* nxt = sp + 2 * HW;
  const int n = blockIdx.x / CV, cv = blockIdx.x % CV;
  const typename L::T* xb = x + (long long)n * HW * ldx + cv * V;
  typename L::T* yb = y + (long long)n * HW * ldy + cv * V;
  for (int p = threadIdx.x; p < HW; p += blockDim.x) {
    const uint4 v = __ldg(reinterpret_cast<const uint4*>(xb + p * ldx));
    cur[p] = v;
    *reinterpret_cast<uint4*>(yb + p * ldy) = v;
  }
  for (int level = 1; level <= 3; ++level) {
    __syncthreads();
    for (int p = threadIdx.x; p < HW; p += blockDim.x) {
      const int px = p % W;
      uint4 m = cur[p];
      for (int d = 1; d <= r; ++d) {
        if (px - d >= 0) m = L::vmax(m, cur[p - d]);
        if (px + d < W) m = L::vmax(m, cur[p + d]);
      }
      tmp[p] = m;
    }
    __syncthreads();
    for (int p = threadIdx.x; p < HW; p += blockDim.x) {
      const int py = p / W;
      uint4 m = tmp[p];
      for (int d = 1; d <= r; ++d) {
        if (py - d >= 0) m = L::vmax(m, tmp[p - d * W]);
        if (py + d < H) m = L::vmax(m, tmp[p + d * W]);
      }
      nxt[p] = m;
      *reinterpret_cast<uint4*>(yb + p * ldy + level * C) = m;
    }
    uint4* t = cur;
    cur = nxt;
    nxt = t;
  }
}

class PoolLayer : public Layer {
 public:
  explicit PoolLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(x.rank() == 4, s.op, " node '", s.name, "': only 2-D pooling runs on the GPU");
    KESTREL_CHECK(x.dtype == y.dtype && (x.dtype == DType::F32 || x.dtype == DType::F16 || x.dtype == DType::I8),
                  "internal: pool dtype");
    global_ = s.op == "GlobalAveragePool" || s.op == "GlobalMaxPool";
    a_ = {};
    a_.is_max = s.op == "MaxPool" || s.op == "GlobalMaxPool";
    // The max of int8 codes is the code of the max (one scale in and out); an average is not a code.
    KESTREL_CHECK(x.dtype != DType::I8 || a_.is_max, s.op, " node '", s.name,
                  "': int8 tensors run only max pooling (an int8 average would need requantization)");
    a_.N = static_cast<int>(x.shape[0]);
    a_.C = static_cast<int>(x.shape[1]);
    a_.H = static_cast<int>(x.shape[2]);
    a_.W = static_cast<int>(x.shape[3]);
    a_.OH = static_cast<int>(y.shape[2]);
    a_.OW = static_cast<int>(y.shape[3]);
    a_.ldx = pixel_stride(x, s);
    a_.ldy = pixel_stride(y, s);
    a_.total = static_cast<int>(y.numel());
    dt_ = x.dtype;
    if (!global_) {
      Node n{s.name, s.op, {}, {}, s.attrs};
      PoolGeometry g = window_geometry(n, {x.shape[2], x.shape[3]}, s.attrs.ints("kernel_shape"), s.attrs.i("ceil_mode", 0));
      a_.kh = static_cast<int>(g.kernel[0]);
      a_.kw = static_cast<int>(g.kernel[1]);
      a_.sh = static_cast<int>(g.strides[0]);
      a_.sw = static_cast<int>(g.strides[1]);
      a_.dh = static_cast<int>(g.dilations[0]);
      a_.dw = static_cast<int>(g.dilations[1]);
      a_.ph = static_cast<int>(g.pads[0]);
      a_.pw = static_cast<int>(g.pads[1]);
      a_.pe_h = static_cast<int>(g.pads[2]);
      a_.pe_w = static_cast<int>(g.pads[3]);
      a_.count_pad = static_cast<int>(s.attrs.i("count_include_pad", 0));
    }
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (a_.total == 0) return;
    if (dt_ == DType::F16) launch<__half>(io, stream);
    else if (dt_ == DType::I8) launch<int8_t>(io, stream);
    else launch<float>(io, stream);
    KLAUNCH("pool");
  }

 private:
  template <typename T>
  void launch(const LayerIO& io, cudaStream_t stream) const {
    const T* x = static_cast<const T*>(io.in[0]);
    T* y = static_cast<T*>(io.out[0]);
    if (global_) {
      const int n = a_.N * a_.C;
      global_pool_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(x, y, a_.N, a_.C, a_.H * a_.W, a_.ldx, a_.ldy * a_.OH * a_.OW, a_.is_max);
    } else {
      pool_kernel<<<blocks_for(a_.total, 256), 256, 0, stream>>>(x, y, a_);
    }
  }

  PoolArgs a_;
  bool global_ = false;
  DType dt_ = DType::F32;
};

class SppfLayer : public Layer {
 public:
  explicit SppfLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(x.rank() == 4 && y.shape[1] == 4 * x.shape[1], "kestrel.SPPF node '", s.name, "': bad shapes");
    KESTREL_CHECK(x.dtype == y.dtype && (x.dtype == DType::F32 || x.dtype == DType::F16 || x.dtype == DType::I8),
                  "internal: kestrel.SPPF node '", s.name, "': unsupported dtype ", dtype_name(x.dtype), " -> ",
                  dtype_name(y.dtype));
    N_ = static_cast<int>(x.shape[0]);
    C_ = static_cast<int>(x.shape[1]);
    H_ = static_cast<int>(x.shape[2]);
    W_ = static_cast<int>(x.shape[3]);
    ldx_ = pixel_stride(x, s);
    ldy_ = pixel_stride(y, s);
    r_ = static_cast<int>(s.attrs.i("kernel", 5) / 2);
    dt_ = x.dtype;
  }
  // Channels per 16-byte vector (0: no vector kernels for this dtype).
  int lanes() const { return dt_ == DType::F16 ? 8 : dt_ == DType::I8 ? 16 : 0; }
  bool vec_ok() const { const int v = lanes(); return v && C_ % v == 0 && ldx_ % v == 0 && ldy_ % v == 0; }
  bool smem_ok() const { return vec_ok() && 3ll * H_ * W_ * 16 <= 48 * 1024; }
  // "default": the windowed kernels (the reference; for fp16 the vector one where it applies);
  // "vec" (int8): the windowed vector kernel, kept apart so the scalar one stays the int8 reference;
  // "smem": separable passes in shared memory.
  std::vector<std::string> tactics(Handles&) const override {
    std::vector<std::string> t = {"default"};
    if (dt_ == DType::I8 && vec_ok()) t.push_back("vec");
    if (smem_ok()) t.push_back("smem");
    return t;
  }
  void set_tactic(const std::string& t, Handles&) override {
    KESTREL_CHECK(t == "default" || (t == "vec" && dt_ == DType::I8 && vec_ok()) || (t == "smem" && smem_ok()),
                  "unknown SPPF tactic '", t, "'");
    tactic_ = t;
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    const int n = N_ * H_ * W_ * C_;
    if (!n) return;
    auto a16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
    const bool vec = vec_ok() && a16(io.in[0]) && a16(io.out[0]);
    if (dt_ == DType::F16) {
      if (vec) launch_vec<HalfLanes>(io, stream);
      else launch_scalar<__half>(io, stream);
    } else if (dt_ == DType::I8) {
      if (vec && tactic_ != "default") launch_vec<Int8Lanes>(io, stream);
      else launch_scalar<int8_t>(io, stream);
    } else {
      launch_scalar<float>(io, stream);
    }
    KLAUNCH("sppf");
  }

 private:
  template <typename T>
  void launch_scalar(const LayerIO& io, cudaStream_t stream) const {
    sppf_kernel<<<blocks_for(static_cast<int64_t>(N_) * H_ * W_ * C_, 256), 256, 0, stream>>>(
        static_cast<const T*>(io.in[0]), static_cast<T*>(io.out[0]), N_, C_, H_, W_, ldx_, ldy_, r_);
  }
  template <typename L>
  void launch_vec(const LayerIO& io, cudaStream_t stream) const {
    using T = typename L::T;
    const T* x = static_cast<const T*>(io.in[0]);
    T* y = static_cast<T*>(io.out[0]);
    constexpr int V = L::kLanes;
    if (tactic_ == "smem")
      sppf_smem_kernel<L><<<N_ * (C_ / V), 256, 3 * H_ * W_ * sizeof(uint4), stream>>>(x, y, C_, H_, W_, ldx_, ldy_, r_);
    else
      sppf_vec_kernel<L><<<blocks_for(static_cast<int64_t>(N_) * H_ * W_ * (C_ / V), 256), 256, 0, stream>>>(x, y, N_, C_, H_, W_,
                                                                                                             ldx_, ldy_, r_);
  }

  int N_, C_, H_, W_, r_;
  long long ldx_, ldy_;
  DType dt_ = DType::F32;
};

}  // namespace

std::unique_ptr<Layer> make_pool(const LayerSpec& s) { return std::make_unique<PoolLayer>(s); }
std::unique_ptr<Layer> make_sppf(const LayerSpec& s) { return std::make_unique<SppfLayer>(s); }

}  // namespace kestrel::cuda
