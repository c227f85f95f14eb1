// The INT8 implicit GEMM: conv_igemm.cu's kernel on int8 data (mma.sync m16n8k32 s8.s8.s32, exact
// int32 accumulators) with the contract's epilogue (include/kestrel/quant.h).
//   GEMM view: M = N*OH*OW output pixels, N = K output channels, Kd = KH*KW*C (weights OHWI).
//   Why the FP16 kernel carries over unchanged: with k-contiguous rows in shared memory, the ldmatrix
//   b16 fragments of m16n8k16 (a thread holds bytes 4t..4t+3 of rows g and g+8, then bytes 16+4t..)
//   are byte for byte the s8 fragments of m16n8k32, and the s32 accumulator layout is the f32 one. So
//   a 16-byte cp.async chunk carries 16 channels instead of 8 and the block tile is BM x BN x 64 int8,
//   the same 64-byte rows (padded to 80 bytes: ldmatrix rows hit distinct banks) as BK 32 halves.
//   Split-K (_skS) for layers with few tiles: int32 partial tiles in scratch, summed by the last CTA of
//   a tile to arrive (an atomic counter, reset by that CTA), in split order as the FP16 kernel does
//   (integer sums are exact in any order, so every split count gives the same bits).
//   Epilogue: the int32 tile goes to shared memory; then each output element gets
//   fmaf(float(acc), scale[k], bias[k]) -> act (tanh.approx-based, as in the FP16 kernels) -> + residual
//   (FP32) -> fp16, or the int8 code of that fp16 value (int8_code: the IEEE quotient's rounding,
//   exactly, without a division per element). 16-byte rows out when the channel count, the
//   pixel strides and the pointers allow (fp16: 8 channels; int8: 16), one element per thread
//   otherwise (still coalesced along the channels).
#include <cstdlib>
#include <map>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/mma_common.cuh"
#include "backend/cuda/int8_kernels.h"

namespace kestrel::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kBK = 64;        // int8 per k tile
constexpr int kLds = kBK + 16;  // shared row stride in bytes (80, as the FP16 kernel's 40 halves)
constexpr int kStages = 3;
// sm_90's opt-in shared memory per block; a config needing more is not offered.
constexpr size_t kMaxSmem = 227 * 1024;

struct Igemm8Args {
  const int8_t* x;
  const int8_t* w;
  const float* scale;
  const float* bias;
  const __half* r;
  const int8_t* rq;  // or an int8 residual, dequantized with r_scale
  float r_scale;
  void* y;
  int N, H, W, C, OH, OW, K, KH, KW, sh, sw, ph, pw, dh, dw;
  long long ldx, ldy, ldr;
  int M, Kd;
  int act;
  float alpha, beta;
  float out_scale, out_rcp;  // out_scale > 0: int8 output; out_rcp = int8_reciprocal(out_scale)
  int splits, vec_epi;
  int* ws;        // split-K partial tiles [tiles][splits][BM][BN]
  int* counters;  // split-K arrival counters, one per tile (zero between launches)
};

__device__ __forceinline__ void mma16832(int (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The contract's epilogue of one element up to the residual: fmaf(float(acc), s_x * s_w[k], b[k]), act.
__device__ __forceinline__ float epilogue_value(const Igemm8Args& a, int acc, float scale, float bias) {
  return apply_act_fast(a.act, fmaf(__int2float_rn(acc), scale, bias), a.alpha, a.beta);
}

template <int BM, int BN, int WM, int WN>
__global__ void __launch_bounds__(kThreads) igemm_int8_kernel(const __grid_constant__ Igemm8Args a) {
  constexpr int kWarpsN = BN / WN;
  constexpr int MT = WM / 16, NT = WN / 8;
  constexpr int A_CHUNKS = BM * (kBK / 16) / kThreads;
  constexpr int B_TOTAL = BN * (kBK / 16);
  constexpr int B_CHUNKS = (B_TOTAL + kThreads - 1) / kThreads;
  constexpr int kLdc = BN + 8;  // epilogue tile row stride in int32 (conflict-free 8-byte fragment stores)
  static_assert((BM / WM) * (BN / WN) == kThreads / 32, "4 warps per block");
  static_assert(A_CHUNKS >= 1 && A_CHUNKS * kThreads == BM * (kBK / 16) && NT % 2 == 0, "tile shape");
  static_assert(BN % 16 == 0 && BN <= kThreads, "BN: whole 16-channel int8 rows, one scale per thread");
  static_assert(BM * kLdc * 4 <= kStages * (BM + BN) * kLds, "epilogue tile fits the pipeline's shared memory");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ int s_last;
  __shared__ float s_scale[BN], s_bias[BN];
  int8_t* sA = reinterpret_cast<int8_t*>(smem_raw);
  int8_t* sB = sA + kStages * BM * kLds;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / kWarpsN, wn = warp % kWarpsN;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;

  // The output pixels this thread loads for A (fixed across the K loop). All of a thread's chunks sit
  // at the same k offset (16 * (tid % 4)), so one (ci, kx, ky) state, advanced without divisions from
  // tile to tile, serves them all (load_tile is called in increasing kt order). C % 16 == 0: a chunk
  // never straddles two taps.
  // Per chunk: the window origin (iy0, ix0) and a pointer to it; a row past M gets an origin no tap
  // can bring inside the image, so one unsigned compare per coordinate does all the bounds checks.
  int a_row[A_CHUNKS], a_kc[A_CHUNKS], a_iy0[A_CHUNKS], a_ix0[A_CHUNKS];
  const int8_t* a_ptr[A_CHUNKS];
#pragma unroll
  for (int i = 0; i < A_CHUNKS; ++i) {
    const int q = tid + i * kThreads;
    a_row[i] = q >> 2;
    a_kc[i] = q & 3;
    const int m = m0 + a_row[i];
    const int mm = m < a.M ? m : 0;
    const int ox = mm % a.OW, t = mm / a.OW, oy = t % a.OH, n = t / a.OH;
    a_iy0[i] = m < a.M ? oy * a.sh - a.ph : (1 << 29);
    a_ix0[i] = ox * a.sw - a.pw;
    a_ptr[i] = a.x + (long long)n * a.H * a.W * a.ldx + ((long long)a_iy0[i] * a.W + a_ix0[i]) * a.ldx;
  }
  // B rows (output channels) are fixed per thread too.
  const int8_t* b_ptr[B_CHUNKS];
  bool b_ok[B_CHUNKS];
#pragma unroll
  for (int i = 0; i < B_CHUNKS; ++i) {
    const int q = tid + i * kThreads;
    const int nn = n0 + (q >> 2);
    b_ok[i] = q < B_TOTAL && nn < a.K;
    b_ptr[i] = a.w + (long long)(b_ok[i] ? nn : 0) * a.Kd + (q & 3) * 16;
  }

  int a_ci = 0, a_kx = 0, a_ky = 0;  // set below, once the split's first tile is known
  auto load_tile = [&](int stage, int kt) {
    const int kbase = kt * kBK;
    // This tile's tap, shared by all of the thread's chunks.
    const bool k_ok = a_ky < a.KH;  // k < Kd
    const int dy = a_ky * a.dh, dx = a_kx * a.dw;
    const long long tap = (static_cast<long long>(dy) * a.W + dx) * a.ldx + a_ci;
#pragma unroll
    for (int i = 0; i < A_CHUNKS; ++i) {
      const bool ok = k_ok && static_cast<unsigned>(a_iy0[i] + dy) < static_cast<unsigned>(a.H) &&
                      static_cast<unsigned>(a_ix0[i] + dx) < static_cast<unsigned>(a.W);
      const int8_t* src = ok ? a_ptr[i] + tap : a.x;
      cp_async16(sA + (stage * BM + a_row[i]) * kLds + a_kc[i] * 16, src, ok ? 16 : 0);
    }
    a_ci += kBK;
    while (a_ci >= a.C) {
      a_ci -= a.C;
      if (++a_kx == a.KW) {
        a_kx = 0;
        ++a_ky;
      }
    }
#pragma unroll
    for (int i = 0; i < B_CHUNKS; ++i) {
      const int q = tid + i * kThreads;
      if (B_TOTAL % kThreads != 0 && q >= B_TOTAL) break;
      const bool ok = b_ok[i] && kbase + (q & 3) * 16 < a.Kd;
      cp_async16(sB + (stage * BN + (q >> 2)) * kLds + (q & 3) * 16, ok ? b_ptr[i] + kbase : a.w, ok ? 16 : 0);
    }
  };

  int acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0;

  const int KT_all = (a.Kd + kBK - 1) / kBK;
  const int z = blockIdx.z;
  const int kt0 = static_cast<int>((static_cast<long long>(KT_all) * z) / a.splits);
  const int KT = static_cast<int>((static_cast<long long>(KT_all) * (z + 1)) / a.splits) - kt0;
  {
    const int k = kt0 * kBK + (tid & 3) * 16;  // this thread's first k (divisions once per CTA)
    a_ci = k % a.C;
    const int t = k / a.C;
    a_kx = t % a.KW;
    a_ky = t / a.KW;
  }
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load_tile(s, kt0 + s);
    cp_async_commit();
  }

  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    // Refill the stage computed in the previous iteration (every thread is past it now).
    const int next = kt + kStages - 1;
    if (next < KT) load_tile(next % kStages, kt0 + next);
    cp_async_commit();

    const int8_t* tA = sA + (kt % kStages) * BM * kLds;
    const int8_t* tB = sB + (kt % kStages) * BN * kLds;
#pragma unroll
    for (int kk = 0; kk < kBK; kk += 32) {
      unsigned af[MT][4];
      unsigned bf[NT][2];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        const int row = wm * WM + mt * 16 + (lane & 15);
        const int col = kk + (lane >> 4) * 16;
        ldmatrix_x4(af[mt], tA + row * kLds + col);
      }
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        const int row = wn * WN + nt * 8 + (lane & 7) + ((lane >> 4) << 3);
        const int col = kk + ((lane >> 3) & 1) * 16;
        unsigned r[4];
        ldmatrix_x4(r, tB + row * kLds + col);
        bf[nt][0] = r[0];
        bf[nt][1] = r[1];
        bf[nt + 1][0] = r[2];
        bf[nt + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16832(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
    }
  }
  cp_async_wait<0>();

  if (a.splits > 1) {
    // Every CTA stores its partial tile; the last one to arrive sums all of them in split order.
    const int tile = blockIdx.y * gridDim.x + blockIdx.x;
    int* part = a.ws + (static_cast<long long>(tile) * a.splits) * BM * BN;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wm * WM + mt * 16 + (lane >> 2) + h * 8, c = wn * WN + nt * 8 + (lane & 3) * 2;
          __stcg(reinterpret_cast<int2*>(part + static_cast<long long>(z) * BM * BN + r * BN + c),
                 make_int2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]));
        }
    __threadfence();
    __syncthreads();
    if (tid == 0) s_last = atomicAdd(&a.counters[tile], 1) == a.splits - 1;
    __syncthreads();
    if (!s_last) return;
    __threadfence();
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wm * WM + mt * 16 + (lane >> 2) + h * 8, c = wn * WN + nt * 8 + (lane & 3) * 2;
          int s0 = 0, s1 = 0;
          for (int zz = 0; zz < a.splits; ++zz) {
            const int2 v = __ldcg(reinterpret_cast<const int2*>(part + static_cast<long long>(zz) * BM * BN + r * BN + c));
            s0 += v.x;
            s1 += v.y;
          }
          acc[mt][nt][2 * h] = s0;
          acc[mt][nt][2 * h + 1] = s1;
        }
    if (tid == 0) a.counters[tile] = 0;
  }

  // The int32 tile into shared memory (the pipeline's buffers are free once every thread is here), the
  // tile's scales and biases beside it.
  if (tid < BN) {
    const int col = n0 + tid;
    s_scale[tid] = col < a.K ? a.scale[col] : 0.f;
    s_bias[tid] = a.bias && col < a.K ? a.bias[col] : 0.f;
  }
  __syncthreads();
  int* sC = reinterpret_cast<int*>(smem_raw);
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int rl = wm * WM + mt * 16 + (lane >> 2) + h * 8, cl = wn * WN + nt * 8 + (lane & 3) * 2;
        *reinterpret_cast<int2*>(sC + rl * kLdc + cl) = make_int2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]);
      }
  __syncthreads();

  const bool out8 = a.out_scale > 0.f;
  if (a.vec_epi && !out8) {
    // 8 channels (16 bytes of fp16) per step; K % 8 == 0, so a step is wholly inside or outside K.
    __half* y = static_cast<__half*>(a.y);
    constexpr int kRowChunks = BN / 8;
    for (int q = tid; q < BM * kRowChunks; q += kThreads) {
      const int rl = q / kRowChunks, cl = (q % kRowChunks) * 8;
      const int m = m0 + rl, col = n0 + cl;
      if (m >= a.M || col >= a.K) continue;
      const int4* src = reinterpret_cast<const int4*>(sC + rl * kLdc + cl);
      const int4 c0 = src[0], c1 = src[1];
      const int av[8] = {c0.x, c0.y, c0.z, c0.w, c1.x, c1.y, c1.z, c1.w};
      float v[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = epilogue_value(a, av[e], s_scale[cl + e], s_bias[cl + e]);
      if (a.r) {
        const uint4 rv = *reinterpret_cast<const uint4*>(a.r + m * a.ldr + col);
        const __half2* rh = reinterpret_cast<const __half2*>(&rv);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(rh[e]);
          v[2 * e] += f.x;
          v[2 * e + 1] += f.y;
        }
      }
      if (a.rq) {
        const uint2 rv = *reinterpret_cast<const uint2*>(a.rq + m * a.ldr + col);
        const int8_t* rb = reinterpret_cast<const int8_t*>(&rv);
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = __fmaf_rn(static_cast<float>(rb[e]), a.r_scale, v[e]);
      }
      uint4 out;
      __half2* oh = reinterpret_cast<__half2*>(&out);
#pragma unroll
      for (int e = 0; e < 4; ++e) oh[e] = __floats2half2_rn(v[2 * e], v[2 * e + 1]);
      *reinterpret_cast<uint4*>(y + m * a.ldy + col) = out;
    }
    return;
  }
  if (a.vec_epi) {
    // 16 channels (16 bytes of int8) per step; K % 16 == 0.
    int8_t* y = static_cast<int8_t*>(a.y);
    constexpr int kRowChunks = BN / 16;
    for (int q = tid; q < BM * kRowChunks; q += kThreads) {
      const int rl = q / kRowChunks, cl = (q % kRowChunks) * 16;
      const int m = m0 + rl, col = n0 + cl;
      if (m >= a.M || col >= a.K) continue;
      const int4* src = reinterpret_cast<const int4*>(sC + rl * kLdc + cl);
      unsigned word[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int4 c4 = src[j];
        const int av[4] = {c4.x, c4.y, c4.z, c4.w};
        float v[4];
#pragma unroll
        for (int e = 0; e < 4; ++e) v[e] = epilogue_value(a, av[e], s_scale[cl + 4 * j + e], s_bias[cl + 4 * j + e]);
        if (a.r) {
          const uint2 rv = *reinterpret_cast<const uint2*>(a.r + m * a.ldr + col + 4 * j);
          const __half2* rh = reinterpret_cast<const __half2*>(&rv);
          const float2 f0 = __half22float2(rh[0]), f1 = __half22float2(rh[1]);
          v[0] += f0.x;
          v[1] += f0.y;
          v[2] += f1.x;
          v[3] += f1.y;
        }
        if (a.rq) {
          const unsigned rv = *reinterpret_cast<const unsigned*>(a.rq + m * a.ldr + col + 4 * j);
          const int8_t* rb = reinterpret_cast<const int8_t*>(&rv);
#pragma unroll
          for (int e = 0; e < 4; ++e) v[e] = __fmaf_rn(static_cast<float>(rb[e]), a.r_scale, v[e]);
        }
        word[j] = 0;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float hv = __half2float(__float2half_rn(v[e]));  // the fp16 value the contract quantizes
          word[j] |= static_cast<unsigned>(static_cast<uint8_t>(int8_code(hv, a.out_scale, a.out_rcp))) << (8 * e);
        }
      }
      *reinterpret_cast<uint4*>(y + m * a.ldy + col) = make_uint4(word[0], word[1], word[2], word[3]);
    }
    return;
  }

  // Element stores (channel counts, strides or pointers not aligned for 16-byte rows): consecutive
  // threads take consecutive channels of a pixel, so the stores still coalesce.
  for (int q = tid; q < BM * BN; q += kThreads) {
    const int rl = q / BN, cl = q % BN;
    const int m = m0 + rl, col = n0 + cl;
    if (m >= a.M || col >= a.K) continue;
    float v = epilogue_value(a, sC[rl * kLdc + cl], s_scale[cl], s_bias[cl]);
    if (a.r) v += __half2float(a.r[m * a.ldr + col]);
    if (a.rq) v = __fmaf_rn(static_cast<float>(a.rq[m * a.ldr + col]), a.r_scale, v);
    const __half h = __float2half_rn(v);
    if (out8)
      static_cast<int8_t*>(a.y)[m * a.ldy + col] = int8_code(__half2float(h), a.out_scale, a.out_rcp);
    else
      static_cast<__half*>(a.y)[m * a.ldy + col] = h;
  }
}

using KernelFn = void (*)(Igemm8Args);

struct Entry {
  const char* name;
  int bm, bn;
  KernelFn fn;
};

template <int BM, int BN, int WM, int WN>
Entry entry(const char* name) {
  return {name, BM, BN, igemm_int8_kernel<BM, BN, WM, WN>};
}

// The FP16 kernel's offered tile shapes (the same warp tiles: 4 warps, WM x WN each).
const std::vector<Entry>& entries() {
  static const std::vector<Entry> e = {
      entry<32, 32, 16, 16>("igemm8_32x32"),  entry<64, 16, 16, 16>("igemm8_64x16"),
      entry<128, 16, 32, 16>("igemm8_128x16"), entry<64, 32, 32, 16>("igemm8_64x32"),
      entry<128, 32, 32, 32>("igemm8_128x32"), entry<32, 64, 16, 32>("igemm8_32x64"),
      entry<64, 64, 32, 32>("igemm8_64x64"),   entry<128, 64, 64, 32>("igemm8_128x64"),
      entry<64, 80, 16, 80>("igemm8_64x80"),
  };
  return e;
}

// "igemm8_128x64" or "igemm8_128x64_sk4": the tile config and the split-K factor.
std::pair<const Entry*, int> parse(const std::string& tactic) {
  std::string base = tactic;
  int splits = 1;
  if (auto p = tactic.find("_sk"); p != std::string::npos) {
    base = tactic.substr(0, p);
    splits = std::atoi(tactic.c_str() + p + 3);
  }
  for (const Entry& e : entries())
    if (base == e.name && splits >= 1 && splits <= 16) return {&e, splits};
  fail("unknown INT8 implicit-GEMM tactic '", tactic, "'");
}

// The 3-stage pipeline: (BM + BN) rows of 80 bytes per stage; the epilogue reuses it.
size_t smem_bytes(const Entry& c) { return static_cast<size_t>(kStages) * (c.bm + c.bn) * kLds; }

int64_t tiles_of(const Entry& c, const ConvParams& p) {
  const int64_t M = static_cast<int64_t>(p.N) * p.OH * p.OW;
  return ((M + c.bm - 1) / c.bm) * ((p.K + c.bn - 1) / c.bn);
}

// Channels-last x whose pixels start on 16-byte boundaries (pixel stride % 16).
bool applicable(const ConvParams& p) { return p.group == 1 && p.C % 16 == 0 && p.xs[1] == 1 && p.xs[3] % 16 == 0; }

}  // namespace

std::vector<std::string> igemm_int8_tactics(const ConvParams& p) {
  std::vector<std::string> t;
  if (!applicable(p)) return t;
  const int kt = (p.KH * p.KW * p.C + kBK - 1) / kBK;
  for (const Entry& e : entries()) {
    if (smem_bytes(e) > kMaxSmem) continue;
    t.push_back(e.name);
    // Split-K only where the tiles cannot fill the GPU and each split keeps a few K steps.
    if (tiles_of(e, p) < 256)
      for (int s : {2, 4, 8})
        if (kt >= 3 * s) t.push_back(std::string(e.name) + "_sk" + std::to_string(s));
  }
  return t;
}

int64_t igemm_int8_scratch_bytes(const std::string& tactic, const ConvParams& p) {
  const auto [e, splits] = parse(tactic);
  if (splits == 1) return 0;
  return tiles_of(*e, p) * splits * e->bm * e->bn * static_cast<int64_t>(sizeof(int));
}

int64_t igemm_int8_counters(const std::string& tactic, const ConvParams& p) {
  const auto [e, splits] = parse(tactic);
  return splits == 1 ? 0 : tiles_of(*e, p);
}

void prepare_igemm_int8(const std::string& tactic) {
  const auto [e, splits] = parse(tactic);
  const size_t smem = smem_bytes(*e);
  KESTREL_CHECK(smem <= kMaxSmem, "internal: ", tactic, " needs ", smem, " bytes of shared memory");
  opt_in_shared_memory(e->fn, smem);
}

void launch_conv_igemm_int8(const std::string& tactic, const ConvParams& p, const int8_t* x, const int8_t* w,
                            const Int8Epilogue& e, void* y, void* ws, int* counters, cudaStream_t stream) {
  const auto [en, splits] = parse(tactic);
  auto aligned16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  KESTREL_CHECK(applicable(p), "internal: ", tactic, " cannot run this convolution");
  KESTREL_CHECK(aligned16(x) && aligned16(w), "INT8 convolution input or weights are not 16-byte aligned");
  Igemm8Args a{};
  a.x = x;
  a.w = w;
  a.scale = e.scale;
  a.bias = e.bias;
  a.r = e.r;
  a.rq = e.rq;
  a.r_scale = e.r_scale;
  a.y = y;
  a.N = p.N, a.H = p.H, a.W = p.W, a.C = p.C, a.OH = p.OH, a.OW = p.OW, a.K = p.K;
  a.KH = p.KH, a.KW = p.KW, a.sh = p.sh, a.sw = p.sw, a.ph = p.ph, a.pw = p.pw, a.dh = p.dh, a.dw = p.dw;
  a.ldx = p.xs[3];
  a.ldy = p.ys[3];
  a.ldr = p.rs[3];
  a.M = p.N * p.OH * p.OW;
  a.Kd = p.KH * p.KW * p.C;
  a.act = p.act;
  a.alpha = p.alpha;
  a.beta = p.beta;
  a.out_scale = e.out_scale;
  a.out_rcp = e.out_scale > 0.f ? int8_reciprocal(e.out_scale) : 0.f;
  a.splits = splits;
  a.ws = static_cast<int*>(ws);
  a.counters = counters;
  // 16-byte rows: fp16 8 channels, int8 16 channels per store; an fp16 residual is read 16 (fp16
  // output) or 8 (int8 output) bytes at a time, an int8 one 8 or 4 bytes.
  const int v = e.out_scale > 0.f ? 16 : 8;
  auto aligned8 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 8 == 0; };
  a.vec_epi = p.K % v == 0 && a.ldy % v == 0 && aligned16(y) && (!e.r || (a.ldr % 8 == 0 && aligned16(e.r))) &&
              (!e.rq || (a.ldr % 8 == 0 && aligned8(e.rq)));
  if (a.M == 0 || a.K == 0) return;
  KESTREL_CHECK(splits == 1 || (ws && counters), "internal: split-K without workspace");
  const dim3 grid((a.M + en->bm - 1) / en->bm, (a.K + en->bn - 1) / en->bn, splits);
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem_bytes(*en);
  cfg.stream = stream;
  KCUDA(cudaLaunchKernelEx(&cfg, en->fn, a));
  KLAUNCH("conv_igemm_int8");
}

}  // namespace kestrel::cuda
