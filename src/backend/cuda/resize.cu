// Resize (nearest / bilinear) on channels-last tensors. The source rows and columns (and bilinear
// weights) depend only on the output row / column: they are computed once on the host, in double,
// with the CPU reference's own formulas (ONNX coordinate transformation and nearest rounding modes),
// so the chosen source pixels match bit for bit, and uploaded as small tables. The kernel then only
// gathers: 16 bytes of channels per thread for FP16 / INT8 nearest, one element per thread otherwise.
// INT8 engines resize int8 codes with nearest only: it selects codes, so it commutes with quantization.
#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

struct Tap {
  int i0, i1;
  float w0, w1;
};

struct ResizeArgs {
  int N, C, H, W, OH, OW;
  long long ldx, ldy;
  const Tap* ty;  // [OH]
  const Tap* tx;  // [OW]
  int linear;
};

// Same as src/backend/cpu/resize.cpp.
double source_coord(const std::string& mode, double out_x, double scale, int64_t in_len, int64_t out_len) {
  if (mode == "asymmetric") return out_x / scale;
  if (mode == "align_corners") return out_len == 1 ? 0.0 : out_x * (in_len - 1) / static_cast<double>(out_len - 1);
  if (mode == "pytorch_half_pixel") return out_len > 1 ? (out_x + 0.5) / scale - 0.5 : 0.0;
  if (mode == "tf_half_pixel_for_nn") return (out_x + 0.5) / scale;
  return (out_x + 0.5) / scale - 0.5;
}

int64_t nearest_index(const std::string& mode, double x, int64_t len) {
  int64_t i;
  if (mode == "floor") i = static_cast<int64_t>(std::floor(x));
  else if (mode == "ceil") i = static_cast<int64_t>(std::ceil(x));
  else if (mode == "round_prefer_ceil") i = static_cast<int64_t>(std::floor(x + 0.5));
  else i = (x - std::floor(x) == 0.5) ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x));
  return std::clamp<int64_t>(i, 0, len - 1);
}

std::vector<Tap> taps(bool linear, const std::string& ctm, const std::string& nmode, int64_t out_len, int64_t in_len, double scale) {
  std::vector<Tap> t(static_cast<size_t>(out_len));
  for (int64_t o = 0; o < out_len; ++o) {
    if (!linear) {
      const int i = static_cast<int>(nearest_index(nmode, source_coord(ctm, static_cast<double>(o), scale, in_len, out_len), in_len));
      t[o] = {i, i, 1.f, 0.f};
    } else {
      const double s = std::clamp(source_coord(ctm, static_cast<double>(o), scale, in_len, out_len), 0.0, static_cast<double>(in_len - 1));
      const int64_t i0 = static_cast<int64_t>(std::floor(s)), i1 = std::min(i0 + 1, in_len - 1);
      const float f = static_cast<float>(s - i0);
      t[o] = {static_cast<int>(i0), static_cast<int>(i1), 1.f - f, f};
    }
  }
  return t;
}

template <typename T>
__global__ void resize_kernel(const T* __restrict__ x, T* __restrict__ y, const __grid_constant__ ResizeArgs a, int total) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int c = i % a.C;
  int p = i / a.C;
  const int ox = p % a.OW;
  p /= a.OW;
  const int oy = p % a.OH;
  const int n = p / a.OH;
  const T* base = x + (long long)n * a.H * a.W * a.ldx + c;
  const Tap ty = a.ty[oy], tx = a.tx[ox];
  float v;
  if (!a.linear) {
    v = to_f(base[((long long)ty.i0 * a.W + tx.i0) * a.ldx]);
  } else {
    auto at = [&](int yy, int xx) { return to_f(base[((long long)yy * a.W + xx) * a.ldx]); };
    v = ty.w0 * (tx.w0 * at(ty.i0, tx.i0) + tx.w1 * at(ty.i0, tx.i1)) + ty.w1 * (tx.w0 * at(ty.i1, tx.i0) + tx.w1 * at(ty.i1, tx.i1));
  }
  y[((long long)(n * a.OH + oy) * a.OW + ox) * a.ldy + c] = from_f<T>(v);
}

// Nearest, 16 bytes of channels (16 / sizeof(T) of them) per thread.
template <typename T>
__global__ void resize_nearest_vec_kernel(const T* __restrict__ x, T* __restrict__ y, const __grid_constant__ ResizeArgs a, int total) {
  constexpr int V = static_cast<int>(16 / sizeof(T));
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int CV = a.C / V;
  const int cv = i % CV;
  int p = i / CV;
  const int ox = p % a.OW;
  p /= a.OW;
  const int oy = p % a.OH;
  const int n = p / a.OH;
  const uint4 v = __ldg(reinterpret_cast<const uint4*>(x + ((long long)(n * a.H + a.ty[oy].i0) * a.W + a.tx[ox].i0) * a.ldx + cv * V));
  *reinterpret_cast<uint4*>(y + ((long long)(n * a.OH + oy) * a.OW + ox) * a.ldy + cv * V) = v;
}

class ResizeLayer : public Layer {
 public:
  explicit ResizeLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(x.rank() == 4, "Resize node '", s.name, "': only 4-D inputs run on the GPU");
    const int64_t ldx = pixel_stride(x, s), ldy = pixel_stride(y, s);
    a_ = {};
    a_.N = static_cast<int>(x.shape[0]);
    a_.C = static_cast<int>(x.shape[1]);
    a_.H = static_cast<int>(x.shape[2]);
    a_.W = static_cast<int>(x.shape[3]);
    a_.OH = static_cast<int>(y.shape[2]);
    a_.OW = static_cast<int>(y.shape[3]);
    a_.ldx = ldx;
    a_.ldy = ldy;
    double sh = static_cast<double>(a_.OH) / a_.H, sw = static_cast<double>(a_.OW) / a_.W;
    const auto given = s.attrs.floats("kestrel_scales", std::vector<float>{});
    if (given.size() == 4) {
      sh = given[2];
      sw = given[3];
    }
    const std::string mode = s.attrs.s("mode", "nearest");
    KESTREL_CHECK(mode == "nearest" || mode == "linear", "Resize mode '", mode, "' is not supported");
    a_.linear = mode == "linear";
    KESTREL_CHECK(x.dtype == y.dtype && (x.dtype == DType::F32 || x.dtype == DType::F16 || x.dtype == DType::I8),
                  "internal: Resize node '", s.name, "': unsupported dtype ", dtype_name(x.dtype), " -> ", dtype_name(y.dtype));
    KESTREL_CHECK(x.dtype != DType::I8 || !a_.linear, "Resize node '", s.name,
                  "': int8 tensors resize only with mode 'nearest' (interpolated int8 codes would need requantization)");
    const std::string ctm = s.attrs.s("coordinate_transformation_mode", "half_pixel");
    const std::string nm = s.attrs.s("nearest_mode", "round_prefer_floor");
    table_ = taps(a_.linear, ctm, nm, a_.OH, a_.H, sh);
    const std::vector<Tap> tx = taps(a_.linear, ctm, nm, a_.OW, a_.W, sw);
    table_.insert(table_.end(), tx.begin(), tx.end());
    total_ = static_cast<int>(y.numel());
    dt_ = x.dtype;
    tactic_ = "default";
  }
  ~ResizeLayer() override {
    if (dev_) cudaFree(dev_);
  }

  // The tables go to the device once per layer instance (context), outside any graph capture.
  void set_tactic(const std::string& t, Handles& h) override {
    Layer::set_tactic(t, h);
    if (!dev_ && !table_.empty()) {
      KCUDA(cudaMalloc(&dev_, table_.size() * sizeof(Tap)));
      KCUDA(cudaMemcpy(dev_, table_.data(), table_.size() * sizeof(Tap), cudaMemcpyHostToDevice));
    }
    a_.ty = static_cast<const Tap*>(dev_);
    a_.tx = static_cast<const Tap*>(dev_) + a_.OH;
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles& h) override {
    if (!total_) return;
    if (!dev_) set_tactic(tactic_, h);
    if (dt_ == DType::F16) launch<__half>(io, stream);
    else if (dt_ == DType::I8) launch<int8_t>(io, stream);
    else launch<float>(io, stream);
    KLAUNCH("resize");
  }

 private:
  ResizeArgs a_;
  std::vector<Tap> table_;
  void* dev_ = nullptr;
  int total_ = 0;
  DType dt_ = DType::F32;

  template <typename T>
  void launch(const LayerIO& io, cudaStream_t stream) const {
    constexpr int V = static_cast<int>(16 / sizeof(T));
    const T* x = static_cast<const T*>(io.in[0]);
    T* y = static_cast<T*>(io.out[0]);
    auto a16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
    // FP32 keeps the scalar kernel (as before); FP16 / INT8 nearest gather 16 bytes where aligned.
    if constexpr (!std::is_same_v<T, float>) {
      if (!a_.linear && a_.C % V == 0 && a_.ldx % V == 0 && a_.ldy % V == 0 && a16(x) && a16(y)) {
        resize_nearest_vec_kernel<<<blocks_for(total_ / V, 256), 256, 0, stream>>>(x, y, a_, total_ / V);
        return;
      }
    }
    resize_kernel<<<blocks_for(total_, 256), 256, 0, stream>>>(x, y, a_, total_);
  }
};

}  // namespace

std::unique_ptr<Layer> make_resize(const LayerSpec& s) { return std::make_unique<ResizeLayer>(s); }

}  // namespace kestrel::cuda
