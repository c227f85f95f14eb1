// The first convolution on the tensor cores (tactic stem_mma of kestrel.ConvStem, FP16 output):
// YOLOv8 / YOLO11's 3 channels, 3x3, stride 2, pad 1 as a GEMM of M = output pixels, N = K output
// channels, K = the 27 taps padded to 32 (two m16n8k16 steps). The FP32 kernels (stem_common.cuh) spend
// 27 x K products per pixel on the FP32 pipes with the weights read from shared memory; here a pixel
// costs 2 K / 8 mma per 16 pixels and the shared-memory reads of its taps.
//   A CTA takes 64 output pixels (4 warps x 16) of kRows consecutive output rows: it stages the
//   2 kRows + 1 input rows they read (neighbouring output rows share one), the three channels each, as
//   float in shared memory (16-byte cp.async: the rows have unit stride and a width that is a multiple of
//   4), then each warp builds its A fragments from there, rounding the image to fp16 as every other
//   FP16 layer rounds its input. The weights (OHWI float32) become B fragments in registers once per
//   CTA and serve all its rows: per output row, a CTA of one row spent as many instructions on its
//   set-up (weights, tap offsets, bias) as on its products. Bias and activation on the FP32
//   accumulators, fp16 channels-last out.
#include <cstdint>

#include "backend/cuda/check.h"
#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/mma_common.cuh"
#include "backend/cuda/stem_common.cuh"

namespace kestrel::cuda {

namespace {

constexpr int kPixels = 64;              // output pixels per CTA row (4 warps x 16)
constexpr int kRows = 4;                 // output rows per CTA
constexpr int kInRows = 2 * kRows + 1;   // the input rows they read
constexpr int kTaps = 27;                // 3 x 3 x 3
constexpr int kLdw = 4 + 2 * kPixels + 4;  // staged input columns: 3 of padding, the halo, 128, slack

// Input column 2 * ox0 - 4 + j sits at staged column j, so the 16-byte chunks of columns 2 * ox0 + 4 i
// land on 16-byte boundaries and the window of local pixel p, tap column kx starts at 2 p + 3 + kx.
template <int K>
__global__ void __launch_bounds__(128) stem_mma_kernel(const __grid_constant__ ConvParams p, const float* __restrict__ x,
                                                         const float* __restrict__ w, const float* __restrict__ bias,
                                                         __half* __restrict__ y) {
  constexpr int NT = K / 8;
  __shared__ __align__(16) float s_in[3][kInRows][kLdw];  // [c][row][column]
  const int segs = (p.OW + kPixels - 1) / kPixels, bands = (p.OH + kRows - 1) / kRows;
  const int seg = blockIdx.x % segs, oy0 = (blockIdx.x / segs) % bands * kRows, n = blockIdx.x / (segs * bands);
  const int ox0 = seg * kPixels;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  // Stage rows 2 oy0 - 1 .. 2 oy0 + 2 kRows - 1: 32 float4 per (channel, row) and the value left of them.
  // Asynchronous copies (zero-filled outside the image), all in flight at once: loads that each wait
  // for their value before the next kept the kernel waiting on memory latency.
#pragma unroll
  for (int i = tid; i < 3 * kInRows * (kPixels / 2); i += 128) {
    const int cr = i / (kPixels / 2), q = i % (kPixels / 2), c = cr / kInRows, r = cr % kInRows;
    const int iy = 2 * oy0 - 1 + r, ix = 2 * ox0 + 4 * q;
    const bool in = iy >= 0 && iy < p.H && ix < p.W;
    cp_async16(&s_in[c][r][4 + 4 * q], in ? x + n * p.xs[0] + c * p.xs[1] + static_cast<long long>(iy) * p.xs[2] + ix : x,
               in ? 16 : 0);
  }
  cp_async_commit();
  if (tid < 3 * kInRows) {
    const int c = tid / kInRows, r = tid % kInRows, iy = 2 * oy0 - 1 + r, ix = 2 * ox0 - 1;
    s_in[c][r][3] = iy >= 0 && iy < p.H && ix >= 0 ? __ldg(x + n * p.xs[0] + c * p.xs[1] + static_cast<long long>(iy) * p.xs[2] + ix) : 0.f;
  }

  // B fragments (k16 x n8, "col"): this lane's taps kk + (lane % 4) * 2 + {0, 1} and + 8, output
  // channel nt * 8 + lane / 4; taps past 27 are zero. Weights OHWI: w[k][tap], tap = (ky * 3 + kx) * 3 + c.
  unsigned bf[2][NT][2];
#pragma unroll
  for (int ks = 0; ks < 2; ++ks)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int t = ks * 16 + (lane & 3) * 2 + h * 8, k = nt * 8 + (lane >> 2);
        const float w0 = t < kTaps ? __ldg(w + k * kTaps + t) : 0.f, w1 = t + 1 < kTaps ? __ldg(w + k * kTaps + t + 1) : 0.f;
        const __half2 hw = __floats2half2_rn(w0, w1);
        bf[ks][nt][h] = *reinterpret_cast<const unsigned*>(&hw);
      }
  // This lane's A taps (the same columns as its B taps): their offset in s_in relative to the window
  // of the pixel in the band's first row, or -1 past tap 27.
  int off[2][4];
#pragma unroll
  for (int ks = 0; ks < 2; ++ks)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int t = ks * 16 + (lane & 3) * 2 + (j & 1) + (j >> 1) * 8;
      const int ky = t / 9, kx = (t / 3) % 3, c = t % 3;
      off[ks][j] = t < kTaps ? (c * kInRows + ky) * kLdw + 3 + kx : -1;
    }
  cp_async_wait<0>();
  __syncthreads();

  const float* sin = &s_in[0][0][0];
  const int p0 = warp * 16 + (lane >> 2);  // this lane's pixels p0 and p0 + 8 (A rows)
  float b[NT][2];
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    const int k = nt * 8 + (lane & 3) * 2;
    b[nt][0] = bias ? __ldg(bias + k) : 0.f;
    b[nt][1] = bias ? __ldg(bias + k + 1) : 0.f;
  }
#pragma unroll 1
  for (int rr = 0; rr < kRows; ++rr) {
    const int oy = oy0 + rr;
    if (oy >= p.OH) break;
    float acc[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[nt][e] = 0.f;
    const float* row = sin + 2 * rr * kLdw;
#pragma unroll
    for (int ks = 0; ks < 2; ++ks) {
      // A (m16 x k16, row-major): a[0] = (p0, taps j 0-1), a[1] = (p0 + 8, taps 0-1), a[2] = (p0, taps
      // 2-3: +8), a[3] = (p0 + 8, taps 2-3).
      unsigned af[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const int px = p0 + (r & 1) * 8, j = (r >> 1) * 2;
        const float v0 = off[ks][j] >= 0 ? row[off[ks][j] + 2 * px] : 0.f;
        const float v1 = off[ks][j + 1] >= 0 ? row[off[ks][j + 1] + 2 * px] : 0.f;
        const __half2 h = __floats2half2_rn(v0, v1);
        af[r] = *reinterpret_cast<const unsigned*>(&h);
      }
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) mma16816(acc[nt], af, bf[ks][nt][0], bf[ks][nt][1]);
    }

    // acc[nt]: (p0, channels nt * 8 + (lane % 4) * 2 + {0, 1}) and the same for p0 + 8.
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int ox = ox0 + p0 + h * 8;
      if (ox >= p.OW) continue;
      __half* out = y + n * p.ys[0] + oy * p.ys[2] + ox * p.ys[3];
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int k = nt * 8 + (lane & 3) * 2;
        *reinterpret_cast<__half2*>(out + k) =
            __floats2half2_rn(apply_act_fast(p.act, acc[nt][2 * h] + b[nt][0], p.alpha, p.beta),
                              apply_act_fast(p.act, acc[nt][2 * h + 1] + b[nt][1], p.alpha, p.beta));
      }
    }
  }
}

}  // namespace

bool conv_stem_mma_supports(const ConvParams& p) {
  return p.group == 1 && is_yolo_stem_rows(p) && (p.K == 16 || p.K == 32 || p.K == 48 || p.K == 64) && p.ys[1] == 1 &&
         p.ys[3] % 2 == 0;
}

bool conv_stem_mma_pointers_ok(const float* x, const void* y) {
  return reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 4 == 0;
}

void launch_conv_stem_mma(const ConvParams& p, const float* x, const float* w, const float* bias, __half* y,
                          cudaStream_t stream) {
  KESTREL_CHECK(conv_stem_mma_supports(p) && conv_stem_mma_pointers_ok(x, y), "internal: stem_mma does not apply");
  const long long blocks = static_cast<long long>(p.N) * ((p.OH + kRows - 1) / kRows) * ((p.OW + kPixels - 1) / kPixels);
  if (!blocks) return;
  KESTREL_CHECK(blocks < (1ll << 31), "stem_mma: too many output rows");
  const auto b = static_cast<unsigned>(blocks);
  switch (p.K) {
    case 16: stem_mma_kernel<16><<<b, 128, 0, stream>>>(p, x, w, bias, y); break;
    case 32: stem_mma_kernel<32><<<b, 128, 0, stream>>>(p, x, w, bias, y); break;
    case 48: stem_mma_kernel<48><<<b, 128, 0, stream>>>(p, x, w, bias, y); break;
    default: stem_mma_kernel<64><<<b, 128, 0, stream>>>(p, x, w, bias, y); break;
  }
  KLAUNCH("conv_stem_mma");
}

}  // namespace kestrel::cuda
