// kestrel.Attention (contract in include/kestrel/passes.h) on channels-last tensors: the input is the
// qkv conv's NHWC output (pixel stride ldx), so head h's q, k and v of pixel n are contiguous channels
// h (2 kd + hd) + [0, kd), [kd, 2 kd), [2 kd, 2 kd + hd); Y and V are NHWC (pixel strides ldy, ldv).
// Two tactics:
//   "default"  the reference: one block per (query, head, image), scores in shared memory, FP32 math
//              (expf, a true division), any kd / hd / dtype;
//   "mma"      FP16, kd 32 and hd 64 (every YOLO11 size): flash attention on the tensor cores; each
//              block takes 64 queries of one head, walks the keys in tiles of 64 with an online softmax
//              in registers (FP32), so the N x N scores never leave the chip. The second product takes
//              P as two fp16 terms (hi + lo): the result is as exact as the unfused graph's FP32
//              MatMuls, whose operands were the same fp16 values.
#include <cfloat>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

struct AttnArgs {
  int N, nh, kd, hd;  // N = H W pixels
  long long ldx, ldy, ldv;
  float scale;
};

// One block per (query n, head h, image b). Dynamic shared memory: N scores + kd query values.
template <typename T>
__global__ void attention_ref_kernel(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ v_img,
                                     const __grid_constant__ AttnArgs a) {
  extern __shared__ float sh[];
  float* s = sh;
  float* q = sh + a.N;
  __shared__ float red[32];
  const int n = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const long long img = static_cast<long long>(b) * a.N;
  const int head = h * (2 * a.kd + a.hd);
  const T* xq = x + (img + n) * a.ldx + head;
  for (int c = threadIdx.x; c < a.kd; c += blockDim.x) q[c] = to_f(xq[c]);
  __syncthreads();
  float mx = -FLT_MAX;
  for (int j = threadIdx.x; j < a.N; j += blockDim.x) {
    const T* xk = x + (img + j) * a.ldx + head + a.kd;
    float acc = 0.f;
    for (int c = 0; c < a.kd; ++c) acc += q[c] * to_f(xk[c]);
    s[j] = acc * a.scale;
    mx = fmaxf(mx, s[j]);
  }
  // Block max, then block sum (warp shuffles, then one value per warp).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  if (!lane) red[warp] = mx;
  __syncthreads();
  mx = red[0];
  for (int w = 1; w < warps; ++w) mx = fmaxf(mx, red[w]);
  __syncthreads();
  float sum = 0.f;
  for (int j = threadIdx.x; j < a.N; j += blockDim.x) sum += (s[j] = expf(s[j] - mx));
  for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  if (!lane) red[warp] = sum;
  __syncthreads();
  sum = 0.f;
  for (int w = 0; w < warps; ++w) sum += red[w];
  for (int j = threadIdx.x; j < a.N; j += blockDim.x) s[j] /= sum;  // P, as the CPU divides it
  __syncthreads();
  for (int c = threadIdx.x; c < a.hd; c += blockDim.x) {
    const T* xv = x + img * a.ldx + head + 2 * a.kd + c;
    float acc = 0.f;
    for (int j = 0; j < a.N; ++j) acc += to_f(xv[j * a.ldx]) * s[j];
    y[(img + n) * a.ldy + h * a.hd + c] = from_f<T>(acc);
    if (v_img) v_img[(img + n) * a.ldv + h * a.hd + c] = xv[n * a.ldx];
  }
}

constexpr int kTile = 64;  // queries per block and keys per step of the mma kernel

// Four 8 x 8 fp16 matrices from shared memory, transposed: lane L gives the address of row L % 8 of
// matrix L / 8 and receives in r[i] the elements [2t, 2t+1][g] of matrix i (g = L / 4, t = L % 4), the
// B fragment of mma16816 for a matrix stored with its k dimension as rows.
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], const void* p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// Two floats as fp16 pairs hi + lo (hi = the rounded values, lo = what rounding left out): an operand
// split this way keeps about 22 bits through an fp16 mma, at the price of a second mma.
__device__ __forceinline__ void split_half2(float a, float b, unsigned& hi, unsigned& lo) {
  const __half2 h = __floats2half2_rn(a, b);
  const float2 f = __half22float2(h);
  const __half2 l = __floats2half2_rn(a - f.x, b - f.y);
  hi = *reinterpret_cast<const unsigned*>(&h);
  lo = *reinterpret_cast<const unsigned*>(&l);
}

// Flash attention, FP16 in and out, FP32 softmax and accumulators. 4 warps, 16 queries each.
template <int KD, int HD>
__global__ void __launch_bounds__(128) attention_mma_kernel(const __half* __restrict__ x, __half* __restrict__ y,
                                                            __half* __restrict__ v_img, const __grid_constant__ AttnArgs a) {
  static_assert(KD % 16 == 0 && HD % 16 == 0, "whole mma tiles");
  // Padded rows (16-byte multiples): the fragment loads and ldmatrix rows hit different banks.
  constexpr int kQ = KD + 8, kV = HD + 8;
  __shared__ __align__(16) __half qs[kTile * kQ];
  __shared__ __align__(16) __half ks[kTile * kQ];
  __shared__ __align__(16) __half vs[kTile * kV];  // [key][channel]
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
  const int q0 = blockIdx.x * kTile, h = blockIdx.y;
  const long long img = static_cast<long long>(blockIdx.z) * a.N;
  const __half* xh = x + img * a.ldx + h * (2 * KD + HD);
  const uint4 zero = make_uint4(0, 0, 0, 0);

  for (int i = tid; i < kTile * (KD / 8); i += 128) {  // the block's queries, 16 bytes at a time
    const int r = i / (KD / 8), c = i % (KD / 8) * 8;
    *reinterpret_cast<uint4*>(qs + r * kQ + c) =
        q0 + r < a.N ? *reinterpret_cast<const uint4*>(xh + (q0 + r) * a.ldx + c) : zero;
  }
  __syncthreads();
  unsigned qa[KD / 16][4];
  const int row = warp * 16 + g;
#pragma unroll
  for (int kk = 0; kk < KD / 16; ++kk) {
    qa[kk][0] = *reinterpret_cast<const unsigned*>(qs + row * kQ + kk * 16 + 2 * t);
    qa[kk][1] = *reinterpret_cast<const unsigned*>(qs + (row + 8) * kQ + kk * 16 + 2 * t);
    qa[kk][2] = *reinterpret_cast<const unsigned*>(qs + row * kQ + kk * 16 + 8 + 2 * t);
    qa[kk][3] = *reinterpret_cast<const unsigned*>(qs + (row + 8) * kQ + kk * 16 + 8 + 2 * t);
  }

  const float sl = a.scale * 1.4426950408889634f;  // scores in base 2: exp(s) = exp2(s log2 e)
  float m[2] = {-FLT_MAX, -FLT_MAX}, l[2] = {0.f, 0.f};  // rows g and g + 8: running max, sum
  float o[HD / 8][4] = {};
  for (int k0 = 0; k0 < a.N; k0 += kTile) {
    __syncthreads();  // the previous tile's readers are done
    for (int i = tid; i < kTile * (KD / 8); i += 128) {
      const int r = i / (KD / 8), c = i % (KD / 8) * 8;
      *reinterpret_cast<uint4*>(ks + r * kQ + c) =
          k0 + r < a.N ? *reinterpret_cast<const uint4*>(xh + (k0 + r) * a.ldx + KD + c) : zero;
    }
    for (int i = tid; i < kTile * (HD / 8); i += 128) {
      const int r = i / (HD / 8), c = i % (HD / 8) * 8;
      // Keys past N get zeros, not whatever follows: their P is 0, and 0 * NaN would not be.
      const uint4 u = k0 + r < a.N ? *reinterpret_cast<const uint4*>(xh + (k0 + r) * a.ldx + 2 * KD + c) : zero;
      *reinterpret_cast<uint4*>(vs + r * kV + c) = u;
      // The first query block of each head also writes v as an image (every key passes through it).
      if (v_img && blockIdx.x == 0 && k0 + r < a.N)
        *reinterpret_cast<uint4*>(v_img + (img + k0 + r) * a.ldv + h * HD + c) = u;
    }
    __syncthreads();

    float s[kTile / 8][4];
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
      for (int kk = 0; kk < KD / 16; ++kk) {
        const __half* kr = ks + (nt * 8 + g) * kQ + kk * 16 + 2 * t;
        mma16816(s[nt], qa[kk], *reinterpret_cast<const unsigned*>(kr), *reinterpret_cast<const unsigned*>(kr + 8));
      }
    }
    // Online softmax: scale, mask keys past N, new row maxima (over the 4 threads of a row), rescale.
    float mx[2] = {m[0], m[1]};
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool valid = k0 + nt * 8 + 2 * t + (e & 1) < a.N;
        s[nt][e] = valid ? s[nt][e] * sl : -INFINITY;
        mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
      }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
      mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
      alpha[r] = exp2f(m[r] - mx[r]);
      m[r] = mx[r];
      l[r] *= alpha[r];
    }
#pragma unroll
    for (int dt = 0; dt < HD / 8; ++dt) {
      o[dt][0] *= alpha[0];
      o[dt][1] *= alpha[0];
      o[dt][2] *= alpha[1];
      o[dt][3] *= alpha[1];
    }
#pragma unroll
    for (int nt = 0; nt < kTile / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[nt][e] = exp2f(s[nt][e] - m[e >> 1]);
        l[e >> 1] += s[nt][e];
      }
    // O += P V: two score tiles of 8 keys make one 16-key A fragment (the accumulator layout of the
    // first product is the operand layout of the second). P goes in as hi + lo halves, so the weights
    // keep FP32's precision and the sum is the unfused graph's FP32 MatMul over the same fp16 values.
#pragma unroll
    for (int kk = 0; kk < kTile / 16; ++kk) {
      unsigned pa[4], pl[4];
      split_half2(s[2 * kk][0], s[2 * kk][1], pa[0], pl[0]);
      split_half2(s[2 * kk][2], s[2 * kk][3], pa[1], pl[1]);
      split_half2(s[2 * kk + 1][0], s[2 * kk + 1][1], pa[2], pl[2]);
      split_half2(s[2 * kk + 1][2], s[2 * kk + 1][3], pa[3], pl[3]);
      // Lanes 0-15 address keys kk*16 + 0..15 of channel block dt, lanes 16-31 the same keys of dt + 1.
      const __half* vrow = vs + (kk * 16 + (lane & 15)) * kV + (lane >> 4) * 8;
#pragma unroll
      for (int dt = 0; dt < HD / 8; dt += 2) {
        unsigned b[4];
        ldmatrix_x4_trans(b, vrow + dt * 8);
        mma16816(o[dt], pa, b[0], b[1]);
        mma16816(o[dt], pl, b[0], b[1]);
        mma16816(o[dt + 1], pa, b[2], b[3]);
        mma16816(o[dt + 1], pl, b[2], b[3]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    l[r] = 1.f / l[r];
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    const int n = q0 + row + 8 * r;
    if (n >= a.N) continue;
    __half* yr = y + (img + n) * a.ldy + h * HD + 2 * t;
#pragma unroll
    for (int dt = 0; dt < HD / 8; ++dt)
      *reinterpret_cast<__half2*>(yr + dt * 8) = __floats2half2_rn(o[dt][2 * r] * l[r], o[dt][2 * r + 1] * l[r]);
  }
}

class AttentionLayer : public Layer {
 public:
  explicit AttentionLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in.at(0);
    const TensorMeta& y = *s.out.at(0);
    a_.nh = static_cast<int>(s.attrs.i("num_heads"));
    a_.kd = static_cast<int>(s.attrs.i("key_dim"));
    a_.hd = static_cast<int>(s.attrs.i("head_dim"));
    a_.scale = s.attrs.f("scale");
    KESTREL_CHECK(x.rank() == 4 && x.shape[1] == int64_t{a_.nh} * (2 * a_.kd + a_.hd) && y.shape[1] == int64_t{a_.nh} * a_.hd,
                  "kestrel.Attention node '", s.name, "': bad shapes");
    KESTREL_CHECK(x.dtype == y.dtype && (x.dtype == DType::F32 || x.dtype == DType::F16),
                  "internal: kestrel.Attention node '", s.name, "': unsupported dtype ", dtype_name(x.dtype));
    B_ = static_cast<int>(x.shape[0]);
    a_.N = static_cast<int>(x.shape[2] * x.shape[3]);
    a_.ldx = pixel_stride(x, s);
    a_.ldy = pixel_stride(y, s);
    has_v_ = s.out.size() > 1;
    if (has_v_) {
      KESTREL_CHECK(s.out[1]->dtype == x.dtype && s.out[1]->shape == y.shape, "internal: kestrel.Attention node '", s.name,
                    "': V must have Y's shape and dtype");
      a_.ldv = pixel_stride(*s.out[1], s);
    }
    dt_ = x.dtype;
    ref_smem_ = (static_cast<size_t>(a_.N) + a_.kd) * sizeof(float);
  }

  bool mma_ok() const {
    return dt_ == DType::F16 && a_.kd == 32 && a_.hd == 64 && a_.ldx % 8 == 0 && a_.ldy % 2 == 0 && (!has_v_ || a_.ldv % 8 == 0);
  }
  std::vector<std::string> tactics(Handles&) const override {
    std::vector<std::string> t = {"default"};
    if (mma_ok()) t.push_back("mma");
    return t;
  }
  void set_tactic(const std::string& t, Handles&) override {
    KESTREL_CHECK(t == "default" || (t == "mma" && mma_ok()), "unknown Attention tactic '", t, "'");
    tactic_ = t;
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!B_ || !a_.N) return;
    void* v = has_v_ ? io.out[1] : nullptr;
    auto a16 = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
    if (tactic_ == "mma" && a16(io.in[0]) && reinterpret_cast<uintptr_t>(io.out[0]) % 4 == 0 && (!v || a16(v))) {
      const dim3 grid((a_.N + kTile - 1) / kTile, a_.nh, B_);
      attention_mma_kernel<32, 64><<<grid, 128, 0, stream>>>(static_cast<const __half*>(io.in[0]),
                                                              static_cast<__half*>(io.out[0]), static_cast<__half*>(v), a_);
      KLAUNCH("attention_mma");
      return;
    }
    if (dt_ == DType::F16) launch_ref<__half>(io.in[0], io.out[0], v, stream);
    else launch_ref<float>(io.in[0], io.out[0], v, stream);
  }

 private:
  template <typename T>
  void launch_ref(const void* x, void* y, void* v, cudaStream_t stream) const {
    opt_in_shared_memory(attention_ref_kernel<T>, ref_smem_);
    attention_ref_kernel<T><<<dim3(a_.N, a_.nh, B_), 128, ref_smem_, stream>>>(static_cast<const T*>(x), static_cast<T*>(y),
                                                                               static_cast<T*>(v), a_);
    KLAUNCH("attention_ref");
  }

  AttnArgs a_{};
  int B_ = 0;
  bool has_v_ = false;
  DType dt_ = DType::F32;
  size_t ref_smem_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_attention(const LayerSpec& s) { return std::make_unique<AttentionLayer>(s); }

}  // namespace kestrel::cuda
