// Kestrel's own convolution: an implicit GEMM on the tensor cores (mma.sync m16n8k16, FP16 in, FP32
// accumulate) over channels-last activations, with the bias / activation / residual epilogue fused
// and a strided output, so it can write straight into a channel slice of a concat buffer.
//   GEMM view: M = N*OH*OW output pixels, N = K output channels, Kd = KH*KW*C (weights OHWI).
//   Block tile BM x BN x 32, 4 warps, 3-stage cp.async pipeline (16-byte chunks, zero-filled outside
//   the image / matrix), ldmatrix fragments from shared rows padded to 40 halves (conflict-free).
//   Epilogue through shared memory: the tile is written back in 16-byte rows (coalesced), the residual
//   read the same way. Split-K (tactic suffix _skS) for layers with few tiles (batch 1, deep layers):
//   blockIdx.z takes a K range, partial tiles go to scratch and the last CTA of a tile (an atomic
//   counter, reset by that CTA) sums them in a fixed order, so results stay deterministic.
#include <algorithm>
#include <cstdlib>
#include <map>

#include "backend/cuda/check.h"
#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/mma_common.cuh"

namespace kestrel::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kBK = 32;
constexpr int kLds = kBK + 8;  // shared row stride in halves (80 bytes: ldmatrix rows hit distinct banks)
constexpr int kStages = 3;

struct IgemmArgs {
  const __half* x;
  const __half* w;
  const float* bias;
  const __half* r;
  __half* y;
  int N, H, W, C, OH, OW, K, KH, KW, sh, sw, ph, pw, dh, dw;
  long long ldx, ldy, ldr;
  int M, Kd;
  int act;
  float alpha, beta;
  int splits, vec_epi;
  float* ws;      // split-K partial tiles [tiles][splits][BM][BN]
  int* counters;  // split-K arrival counters, one per tile (zero between launches)
};

template <int BM, int BN, int WM, int WN>
__global__ void __launch_bounds__(kThreads) igemm_kernel(const __grid_constant__ IgemmArgs a) {
  constexpr int kWarpsN = BN / WN;
  constexpr int MT = WM / 16, NT = WN / 8;
  constexpr int A_CHUNKS = BM * (kBK / 8) / kThreads;
  constexpr int B_TOTAL = BN * (kBK / 8);
  constexpr int B_CHUNKS = (B_TOTAL + kThreads - 1) / kThreads;
  constexpr int kLdc = BN + 8;  // epilogue tile row stride in halves (16-byte rows, conflict-free)
  static_assert((BM / WM) * (BN / WN) == kThreads / 32, "4 warps per block");
  static_assert(A_CHUNKS >= 1 && A_CHUNKS * kThreads == BM * (kBK / 8) && NT % 2 == 0, "tile shape");
  static_assert(BM * kLdc <= kStages * (BM + BN) * kLds, "epilogue tile fits the pipeline's shared memory");

  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ int s_last;
  __half* sA = reinterpret_cast<__half*>(smem_raw);
  __half* sB = sA + kStages * BM * kLds;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = warp / kWarpsN, wn = warp % kWarpsN;
  const int m0 = blockIdx.x * BM, n0 = blockIdx.y * BN;

  // Shared memory as 32-bit shared-window offsets, each thread's copy destinations and fragment
  // sources computed once: the K loop adds only a stage offset. (Per K step the loop otherwise spent
  // more instructions re-deriving addresses, tap offsets and stage indices than on its products.)
  const unsigned sA_u = static_cast<unsigned>(__cvta_generic_to_shared(sA));
  const unsigned sB_u = static_cast<unsigned>(__cvta_generic_to_shared(sB));
  constexpr unsigned kStageA = BM * kLds * 2, kStageB = BN * kLds * 2;  // bytes per stage

  // The output pixels this thread loads for A (fixed across the K loop). All of a thread's chunks sit
  // at the same k offset (kc = tid % 4), so one (ci, kx, ky) state and its offset in the input, advanced
  // without divisions from tile to tile, serve them all (load_tile is called in increasing kt order).
  // Per chunk: the window origin (iy0, ix0) and a pointer to it; a row past M gets an origin no tap
  // can bring inside the image, so one unsigned compare per coordinate does all the bounds checks.
  int a_iy0[A_CHUNKS], a_ix0[A_CHUNKS];
  unsigned a_dst[A_CHUNKS];
  const __half* a_ptr[A_CHUNKS];
#pragma unroll
  for (int i = 0; i < A_CHUNKS; ++i) {
    const int q = tid + i * kThreads;
    const int row = q >> 2, kc = q & 3;
    a_dst[i] = sA_u + (row * kLds + kc * 8) * 2;
    const int m = m0 + row;
    const int mm = m < a.M ? m : 0;
    const int ox = mm % a.OW, t = mm / a.OW, oy = t % a.OH, n = t / a.OH;
    a_iy0[i] = m < a.M ? oy * a.sh - a.ph : (1 << 29);
    a_ix0[i] = ox * a.sw - a.pw;
    a_ptr[i] = a.x + (long long)n * a.H * a.W * a.ldx + ((long long)a_iy0[i] * a.W + a_ix0[i]) * a.ldx;
  }

  const int KT_all = (a.Kd + kBK - 1) / kBK;
  const int z = blockIdx.z;
  const int kt0 = static_cast<int>((static_cast<long long>(KT_all) * z) / a.splits);
  const int KT = static_cast<int>((static_cast<long long>(KT_all) * (z + 1)) / a.splits) - kt0;

  // B rows (output channels) are fixed per thread too; the pointer and its k advance with the tiles.
  const int k_first = kt0 * kBK + (tid & 3) * 8;  // this thread's first k (its chunks share it)
  const __half* b_ptr[B_CHUNKS];
  bool b_ok[B_CHUNKS];
  unsigned b_dst[B_CHUNKS];
#pragma unroll
  for (int i = 0; i < B_CHUNKS; ++i) {
    const int q = tid + i * kThreads;
    const int nn = n0 + (q >> 2);
    b_ok[i] = q < B_TOTAL && nn < a.K;
    b_ptr[i] = a.w + (long long)(b_ok[i] ? nn : 0) * a.Kd + k_first;
    b_dst[i] = sB_u + ((q >> 2) * kLds + (q & 3) * 8) * 2;
  }
  int b_k = k_first;

  // The tap of this thread's next tile: input channel, kernel column and row, and their offset from a
  // chunk's window origin (recomputed only when the channel wraps into the next tap).
  int a_ci = k_first % a.C, a_kx, a_ky, a_dy, a_dx;
  long long a_tap;
  auto set_tap = [&] {
    a_dy = a_ky * a.dh;
    a_dx = a_kx * a.dw;
    a_tap = (static_cast<long long>(a_dy) * a.W + a_dx) * a.ldx + a_ci;
  };
  {
    const int t = k_first / a.C;  // divisions once per CTA
    a_kx = t % a.KW;
    a_ky = t / a.KW;
    set_tap();
  }
  auto load_tile = [&](unsigned stage) {
    const bool k_ok = a_ky < a.KH;  // k < Kd
#pragma unroll
    for (int i = 0; i < A_CHUNKS; ++i) {
      const bool ok = k_ok && static_cast<unsigned>(a_iy0[i] + a_dy) < static_cast<unsigned>(a.H) &&
                      static_cast<unsigned>(a_ix0[i] + a_dx) < static_cast<unsigned>(a.W);
      cp_async16(a_dst[i] + stage * kStageA, ok ? a_ptr[i] + a_tap : a.x, ok ? 16 : 0);
    }
    a_ci += kBK;
    a_tap += kBK;
    if (a_ci >= a.C) {
      do {
        a_ci -= a.C;
        if (++a_kx == a.KW) {
          a_kx = 0;
          ++a_ky;
        }
      } while (a_ci >= a.C);
      set_tap();
    }
    const bool bk_ok = b_k < a.Kd;
#pragma unroll
    for (int i = 0; i < B_CHUNKS; ++i) {
      const int q = tid + i * kThreads;
      if (B_TOTAL % kThreads != 0 && q >= B_TOTAL) break;
      const bool ok = b_ok[i] && bk_ok;
      cp_async16(b_dst[i] + stage * kStageB, ok ? b_ptr[i] : a.w, ok ? 16 : 0);
      b_ptr[i] += kBK;
    }
    b_k += kBK;
  };

  // ldmatrix sources of this lane's fragments in stage 0, k 0.
  unsigned a_frag[MT], b_frag[NT / 2];
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
    a_frag[mt] = sA_u + ((wm * WM + mt * 16 + (lane & 15)) * kLds + (lane >> 4) * 8) * 2;
#pragma unroll
  for (int nt = 0; nt < NT; nt += 2)
    b_frag[nt / 2] = sB_u + ((wn * WN + nt * 8 + (lane & 7) + ((lane >> 4) << 3)) * kLds + ((lane >> 3) & 1) * 8) * 2;

  float acc[MT][NT][4];
#pragma unroll
  for (int i = 0; i < MT; ++i)
#pragma unroll
    for (int j = 0; j < NT; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < KT) load_tile(s);
    cp_async_commit();
  }

  unsigned cs = 0, ls = kStages - 1;  // the stage computed and the stage refilled, kt % 3 and (kt + 2) % 3
  for (int kt = 0; kt < KT; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();
    // Refill the stage computed in the previous iteration (every thread is past it now).
    if (kt + kStages - 1 < KT) load_tile(ls);
    cp_async_commit();

#pragma unroll
    for (int kk = 0; kk < kBK; kk += 16) {
      unsigned af[MT][4];
      unsigned bf[NT][2];
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) ldmatrix_x4(af[mt], a_frag[mt] + cs * kStageA + kk * 2);
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        unsigned r[4];
        ldmatrix_x4(r, b_frag[nt / 2] + cs * kStageB + kk * 2);
        bf[nt][0] = r[0];
        bf[nt][1] = r[1];
        bf[nt + 1][0] = r[2];
        bf[nt + 1][1] = r[3];
      }
#pragma unroll
      for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int nt = 0; nt < NT; ++nt) mma16816(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
    }
    cs = cs == kStages - 1 ? 0 : cs + 1;
    ls = ls == kStages - 1 ? 0 : ls + 1;
  }
  cp_async_wait<0>();

  if (a.splits > 1) {
    // Every CTA stores its partial tile; the last one to arrive sums all of them in split order.
    const int tile = blockIdx.y * gridDim.x + blockIdx.x;
    float* part = a.ws + (static_cast<long long>(tile) * a.splits) * BM * BN;
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = wm * WM + mt * 16 + (lane >> 2) + h * 8, c = wn * WN + nt * 8 + (lane & 3) * 2;
          __stcg(reinterpret_cast<float2*>(part + static_cast<long long>(z) * BM * BN + r * BN + c),
                 make_float2(acc[mt][nt][2 * h], acc[mt][nt][2 * h + 1]));
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
          float s0 = 0.f, s1 = 0.f;
          for (int zz = 0; zz < a.splits; ++zz) {
            const float2 v = __ldcg(reinterpret_cast<const float2*>(part + static_cast<long long>(zz) * BM * BN + r * BN + c));
            s0 += v.x;
            s1 += v.y;
          }
          acc[mt][nt][2 * h] = s0;
          acc[mt][nt][2 * h + 1] = s1;
        }
    if (tid == 0) a.counters[tile] = 0;
  }

  if (a.vec_epi) {
    // Bias + activation into a shared fp16 tile, then 16-byte rows out (plus the residual, read the
    // same way): full sectors instead of 4-byte scattered stores.
    __syncthreads();  // the pipeline's shared memory is free now
    __half* sC = reinterpret_cast<__half*>(smem_raw);
    with_act_fast(a.act, a.alpha, a.beta, [&](auto act) {
#pragma unroll
      for (int nt = 0; nt < NT; ++nt) {
        const int cl = wn * WN + nt * 8 + (lane & 3) * 2;
        const int col = n0 + cl;
        const float b0 = a.bias && col < a.K ? a.bias[col] : 0.f, b1 = a.bias && col < a.K ? a.bias[col + 1] : 0.f;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int rl = wm * WM + mt * 16 + (lane >> 2) + h * 8;
            *reinterpret_cast<__half2*>(sC + rl * kLdc + cl) =
                __floats2half2_rn(act(acc[mt][nt][2 * h] + b0), act(acc[mt][nt][2 * h + 1] + b1));
          }
      }
    });
    __syncthreads();
    constexpr int kRowChunks = BN / 8;
    for (int q = tid; q < BM * kRowChunks; q += kThreads) {
      const int rl = q / kRowChunks, c8 = q % kRowChunks;
      const int m = m0 + rl, col = n0 + c8 * 8;
      if (m >= a.M || col >= a.K) continue;
      uint4 v = *reinterpret_cast<const uint4*>(sC + rl * kLdc + c8 * 8);
      if (a.r) {
        const uint4 rv = *reinterpret_cast<const uint4*>(a.r + m * a.ldr + col);
        __half2* vh = reinterpret_cast<__half2*>(&v);
        const __half2* rh = reinterpret_cast<const __half2*>(&rv);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(vh[e]), g = __half22float2(rh[e]);
          vh[e] = __floats2half2_rn(f.x + g.x, f.y + g.y);
        }
      }
      *reinterpret_cast<uint4*>(a.y + m * a.ldy + col) = v;
    }
    return;
  }

  // Scalar epilogue (channel counts or strides not multiples of 8): two adjacent channels per store.
  with_act_fast(a.act, a.alpha, a.beta, [&](auto act) {
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      const int col = n0 + wn * WN + nt * 8 + (lane & 3) * 2;
      if (col >= a.K) continue;
      const float b0 = a.bias ? a.bias[col] : 0.f, b1 = a.bias ? a.bias[col + 1] : 0.f;
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int m = m0 + wm * WM + mt * 16 + (lane >> 2) + h * 8;
          if (m >= a.M) continue;
          float v0 = act(acc[mt][nt][2 * h] + b0);
          float v1 = act(acc[mt][nt][2 * h + 1] + b1);
          if (a.r) {
            const __half2 rv = *reinterpret_cast<const __half2*>(a.r + m * a.ldr + col);
            v0 += __low2float(rv);
            v1 += __high2float(rv);
          }
          *reinterpret_cast<__half2*>(a.y + m * a.ldy + col) = __floats2half2_rn(v0, v1);
        }
      }
    }
  });
}

using KernelFn = void (*)(IgemmArgs);

struct Entry {
  IgemmConfig cfg;
  KernelFn fn;
};

template <int BM, int BN, int WM, int WN>
Entry entry(const char* name) {
  return {{name, BM, BN}, igemm_kernel<BM, BN, WM, WN>};
}

const std::vector<Entry>& entries() {
  static const std::vector<Entry> e = {
      entry<128, 128, 64, 64>("igemm_128x128"), entry<128, 64, 64, 32>("igemm_128x64"),
      entry<64, 128, 32, 64>("igemm_64x128"),   entry<64, 64, 32, 32>("igemm_64x64"),
      entry<256, 32, 64, 32>("igemm_256x32"),   entry<128, 32, 32, 32>("igemm_128x32"),
      entry<128, 80, 32, 80>("igemm_128x80"),   entry<64, 80, 16, 80>("igemm_64x80"),
      entry<64, 32, 32, 16>("igemm_64x32"),     entry<32, 64, 16, 32>("igemm_32x64"),
      entry<32, 32, 16, 16>("igemm_32x32"),     entry<256, 16, 64, 16>("igemm_256x16"),
      entry<128, 16, 32, 16>("igemm_128x16"),   entry<64, 16, 16, 16>("igemm_64x16"),
  };
  return e;
}

// "igemm_128x64" or "igemm_128x64_sk4": the tile config and the split-K factor.
std::pair<const Entry*, int> parse(const std::string& tactic) {
  std::string base = tactic;
  int splits = 1;
  if (auto p = tactic.find("_sk"); p != std::string::npos) {
    base = tactic.substr(0, p);
    splits = std::atoi(tactic.c_str() + p + 3);
  }
  for (const Entry& e : entries())
    if (base == e.cfg.name && splits >= 1 && splits <= 16) return {&e, splits};
  fail("unknown implicit-GEMM tactic '", tactic, "'");
}

size_t smem_bytes(const IgemmConfig& c) { return static_cast<size_t>(kStages) * (c.bm + c.bn) * kLds * sizeof(__half); }

int64_t tiles_of(const IgemmConfig& c, const ConvParams& p) {
  const int64_t M = static_cast<int64_t>(p.N) * p.OH * p.OW;
  return ((M + c.bm - 1) / c.bm) * ((p.K + c.bn - 1) / c.bn);
}

}  // namespace

const std::vector<IgemmConfig>& igemm_configs() {
  static const std::vector<IgemmConfig> v = [] {
    std::vector<IgemmConfig> r;
    for (const Entry& e : entries()) r.push_back(e.cfg);
    return r;
  }();
  return v;
}

std::vector<std::string> igemm_tactics(const ConvParams& p) {
  std::vector<std::string> t;
  const int kt = (p.KH * p.KW * p.C + kBK - 1) / kBK;
  // Offered to the tuner: the tile shapes that won a YOLOv8n layer at batch 1 or 32 on an H200; the
  // others stay registered for engines and timing caches that name them.
  static const char* const kOffered[] = {"igemm_32x32", "igemm_64x16", "igemm_128x16", "igemm_64x32", "igemm_128x32",
                                         "igemm_32x64", "igemm_64x64", "igemm_128x64", "igemm_64x80"};
  for (const Entry& e : entries()) {
    if (std::none_of(std::begin(kOffered), std::end(kOffered), [&](const char* n) { return std::string(n) == e.cfg.name; }))
      continue;
    t.push_back(e.cfg.name);
    // Split-K only where the tiles cannot fill the GPU and each split keeps a few K steps.
    if (tiles_of(e.cfg, p) < 256)
      for (int s : {2, 4, 8})
        if (kt >= 3 * s) t.push_back(std::string(e.cfg.name) + "_sk" + std::to_string(s));
  }
  return t;
}

int64_t igemm_scratch_bytes(const std::string& tactic, const ConvParams& p) {
  const auto [e, splits] = parse(tactic);
  if (splits == 1) return 0;
  return tiles_of(e->cfg, p) * splits * e->cfg.bm * e->cfg.bn * static_cast<int64_t>(sizeof(float));
}

int64_t igemm_counters(const std::string& tactic, const ConvParams& p) {
  const auto [e, splits] = parse(tactic);
  return splits == 1 ? 0 : tiles_of(e->cfg, p);
}

void prepare_igemm(const std::string& tactic) {
  const auto [e, splits] = parse(tactic);
  opt_in_shared_memory(e->fn, smem_bytes(e->cfg));
}

void launch_conv_igemm(const std::string& tactic, const ConvParams& p, const void* x, const void* w, const float* bias,
                       const void* r, void* y, void* ws, int* counters, cudaStream_t stream) {
  const auto [e, splits] = parse(tactic);
  IgemmArgs a{};
  a.x = static_cast<const __half*>(x);
  a.w = static_cast<const __half*>(w);
  a.bias = bias;
  a.r = static_cast<const __half*>(r);
  a.y = static_cast<__half*>(y);
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
  a.splits = splits;
  a.ws = static_cast<float*>(ws);
  a.counters = counters;
  auto aligned16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
  a.vec_epi = p.K % 8 == 0 && a.ldy % 8 == 0 && aligned16(y) && (!r || (a.ldr % 8 == 0 && aligned16(r)));
  if (a.M == 0 || a.K == 0) return;
  KESTREL_CHECK(splits == 1 || (ws && counters), "internal: split-K without workspace");
  const dim3 grid((a.M + e->cfg.bm - 1) / e->cfg.bm, (a.K + e->cfg.bn - 1) / e->cfg.bn, splits);
  // A plain launch: programmatic stream serialization (PDL) was measured slower on YOLOv8n at batch 1
  // (the waiting CTAs hold SM slots), see bench/RESULTS.md.
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = dim3(kThreads);
  cfg.dynamicSmemBytes = smem_bytes(e->cfg);
  cfg.stream = stream;
  KCUDA(cudaLaunchKernelEx(&cfg, e->fn, a));
  KLAUNCH("conv_igemm");
}

}  // namespace kestrel::cuda
