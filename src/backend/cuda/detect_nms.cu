// Detections on the GPU in the CPU reference's arithmetic (src/yolo/head_decode.cpp, nms.cpp):
//   prepare  (best class only, or YOLOv5's obj * cls): per anchor, the best class or the score planes;
//   classes  one block per (class, image): collect that class's candidates (score > conf), sort them
//            best first (ties: anchor order), greedy NMS on the class-offset boxes in float32 exactly as
//            torchvision, keep at most max_det. The greedy pass goes 32 candidates at a time: a tile
//            is settled among itself (a 32 x 32 suppression mask, then the greedy order on bits, which
//            every warp works out for itself), then the whole block removes later candidates that the
//            tile's survivors suppress; one barrier per tile instead of one per survivor;
//   heavy    a class of more than kHeavyMin candidates would make that chain the kernel's tail (its work
//            grows with survivors x candidates, all on one SM): its block stores the sorted candidates
//            instead, many blocks compute their suppression bits (every pair, as torchvision's CUDA NMS),
//            and one warp per class walks the bits in greedy order;
//   merge    one block per image: the survivors of every class sorted in the reference's global order
//            (score, then anchor * nc + class), the first max_det back to image pixels (scale_boxes).
// Class-offset NMS never suppresses across classes when every box lies within half the offset, which
// is the condition under which the CPU reference runs per class too; an image outside it (or with a
// NaN score, more than max_nms candidates, or a class over the block's capacity) is flagged for the
// CPU path. Built with --fmad=false: no fused multiply-add may change a rounding the CPU makes.
#include <algorithm>
#include <cfloat>
#include <cstdint>

#include "backend/cuda/check.h"
#include "backend/cuda/yolo_kernels.h"

namespace kestrel::cuda {

namespace {

// A (class, image) block holds its candidates in shared memory: keys, offset boxes, removed flags.
// The first pass holds up to kClassCap (four blocks resident per SM, as many as their threads allow);
// the few classes with more candidates go to a second pass with room for kClassCapLarge; beyond that
// the CPU takes the image. A class's time is a chain of block-wide steps (the sort, then a barrier per
// tile of the greedy pass), so the blocks are wide: more threads shorten every step.
constexpr int kClassThreads = 512, kClassCap = 2048;
constexpr int kClassThreadsLarge = 1024, kClassCapLarge = 8192;
constexpr size_t class_smem(int cap) { return static_cast<size_t>(cap) * (sizeof(unsigned long long) + sizeof(float4) + 1); }
// Heavy classes: candidates beyond kHeavyMin go to a slot (up to kHeavyCap = kClassCap, one bit per pair:
// 32 words of 64 per row, one word per lane of the walking warp). A class that finds no free slot runs
// its own greedy pass, so the slot count bounds only the work space.
constexpr int kHeavyMin = 256, kHeavyCap = kClassCap, kHeavyWords = kHeavyCap / 64;
constexpr int kHeavyTile = 64;                                    // mask blocks: 64 rows x 64 columns
constexpr int kHeavyTiles = kHeavyCap / kHeavyTile;               // 32
constexpr int kHeavyPairs = kHeavyTiles * (kHeavyTiles + 1) / 2;  // upper triangle, diagonal included
constexpr int kHeavyMaskBlocks = 4096;                            // a grid-stride loop over (slot, tile pair)
static_assert(kHeavyWords == 32, "the walk keeps one 64-bit word of removed bits per lane");
int heavy_slots(const DetectParams& p) { return std::min(p.batch * p.nc, 2 * p.batch + 8); }
constexpr int kMergeThreads = 1024;
constexpr int kMergeCap = 8192;  // survivors of one image sorted in shared memory
constexpr unsigned kFullMask = 0xffffffffu;

// Float -> unsigned key whose ascending order is the float's descending order.
__device__ __forceinline__ uint32_t desc_key(float s) {
  uint32_t u = __float_as_uint(s);
  u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  return ~u;
}
__device__ __forceinline__ float desc_key_value(uint32_t k) {
  uint32_t u = ~k;
  u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
  return __uint_as_float(u);
}
// Float -> unsigned with the same ascending order (for atomicMin / atomicMax of floats).
__device__ __forceinline__ uint32_t asc_key(float v) {
  const uint32_t u = __float_as_uint(v);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float asc_key_value(uint32_t u) {
  return __uint_as_float((u & 0x80000000u) ? (u & 0x7fffffffu) : ~u);
}

// Whether kept box k suppresses box j: torchvision's float32 IoU, `IoU > threshold` in double. A pair
// that does not intersect has IoU 0 (or NaN for two empty boxes), never above a threshold >= 0, so
// the division is skipped for it (xx2 - xx1 > 0 exactly when xx2 > xx1).
__device__ __forceinline__ bool suppresses(const float4 k, const float4 j, double thr) {
  const float xx1 = fmaxf(k.x, j.x), xx2 = fminf(k.z, j.z);
  if (!(xx2 > xx1)) return false;
  const float yy1 = fmaxf(k.y, j.y), yy2 = fminf(k.w, j.w);
  if (!(yy2 > yy1)) return false;
  const float inter = (xx2 - xx1) * (yy2 - yy1);
  const float area_k = (k.z - k.x) * (k.w - k.y);
  const float area_j = (j.z - j.x) * (j.w - j.y);
  const float ovr = inter / (area_k + area_j - inter);
  return static_cast<double>(ovr) > thr;
}

// Bitonic sort of keys[0, pow2) ascending by the whole block (pow2 a power of two, padding ~0). Each
// step enumerates its pow2 / 2 compare-exchange pairs directly (pair p: index i with a zero bit
// inserted at j, and i | j), so every thread has work at every step.
__device__ void block_sort(unsigned long long* keys, int pow2) {
  const int pairs = pow2 >> 1;
  for (int k = 2; k <= pow2; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int q = threadIdx.x; q < pairs; q += blockDim.x) {
        const int i = ((q & ~(j - 1)) << 1) | (q & (j - 1)), ixj = i | j;
        const unsigned long long x = keys[i], y = keys[ixj];
        if ((x > y) == ((i & k) == 0)) keys[i] = y, keys[ixj] = x;
      }
      __syncthreads();
    }
  }
}

struct Workspace {
  float* best;              // [B, A] best class score (non-multi-label); NaN: the anchor is dropped
  int* best_cls;            // [B, A]
  float* planes;            // [B, nc, A] YOLOv5 obj * cls (multi-label)
  unsigned long long* kept; // [B, nc, max_det] per-class survivors' keys (score key << 32 | anchor)
  int* kept_count;          // [B, nc]
  uint32_t* lohi;           // [B, 2] smallest and largest candidate coordinate (asc_key)
  int* overflow;            // [B * nc] (image * nc + class) pairs left to the second pass; [B * nc]: count
  int* heavy;               // [0]: slots taken; then per slot (image * nc + class, candidates)
  unsigned long long* heavy_keys;  // [slots, kHeavyCap] sorted keys
  float4* heavy_boxes;             // [slots, kHeavyCap] offset boxes in the same order
  unsigned long long* heavy_mask;  // [slots, kHeavyCap, kHeavyWords] row i: the later candidates i suppresses
  int heavy_slots;
};

size_t align256(size_t n) { return (n + 255) & ~size_t{255}; }

// The work space's layout; with base == nullptr only `bytes` counts (detect_workspace_bytes).
struct Carved {
  Workspace w;
  size_t bytes;
};
Carved carve(void* base, const DetectParams& p) {
  const size_t ba = static_cast<size_t>(p.batch) * p.anchors, bc = static_cast<size_t>(p.batch) * p.nc;
  const size_t slots = static_cast<size_t>(heavy_slots(p));
  size_t at = 0;
  auto take = [&](size_t bytes) -> void* {
    const size_t off = at;
    at += align256(bytes);
    return base ? static_cast<char*>(base) + off : nullptr;
  };
  Workspace w{};
  w.best = static_cast<float*>(take(ba * sizeof(float)));
  w.best_cls = static_cast<int*>(take(ba * sizeof(int)));
  w.planes = static_cast<float*>(take(p.v5 && p.multi_label ? ba * p.nc * sizeof(float) : 0));
  w.kept = static_cast<unsigned long long*>(take(bc * p.max_det * 8));
  w.kept_count = static_cast<int*>(take(bc * sizeof(int)));
  w.lohi = static_cast<uint32_t*>(take(static_cast<size_t>(p.batch) * 2 * sizeof(uint32_t)));
  w.overflow = static_cast<int*>(take((bc + 1) * sizeof(int)));
  w.heavy = static_cast<int*>(take((1 + 2 * slots) * sizeof(int)));
  w.heavy_keys = static_cast<unsigned long long*>(take(slots * kHeavyCap * sizeof(unsigned long long)));
  w.heavy_boxes = static_cast<float4*>(take(slots * kHeavyCap * sizeof(float4)));
  w.heavy_mask = static_cast<unsigned long long*>(take(slots * kHeavyCap * kHeavyWords * sizeof(unsigned long long)));
  w.heavy_slots = static_cast<int>(slots);
  return {w, at};
}

__device__ __forceinline__ float4 corners_at(const float* img, const DetectParams& p, int a) {
  float cx, cy, w, h;
  if (p.v5) {
    const float* r = img + static_cast<size_t>(a) * p.channels;
    cx = r[0], cy = r[1], w = r[2], h = r[3];
  } else {
    cx = img[a], cy = img[p.anchors + a], w = img[2 * p.anchors + a], h = img[3 * p.anchors + a];
  }
  const float hw = w / 2, hh = h / 2;
  return make_float4(cx - hw, cy - hh, cx + hw, cy + hh);
}

__global__ void init_kernel(const DetectParams p, int32_t* count, uint32_t* flags, int32_t* candidates, uint32_t* lohi,
                            int* overflow_count, int* heavy_count) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b == 0) *overflow_count = 0, *heavy_count = 0;
  if (b >= p.batch) return;
  count[b] = 0, flags[b] = 0, candidates[b] = 0;
  lohi[2 * b] = 0xffffffffu, lohi[2 * b + 1] = 0u;
}

// Per (image, anchor): the best class (first maximum, as torch.max) for best-class-only decoding, or
// YOLOv5's score planes obj * cls for multi-label decoding (contiguous per class for the class blocks).
__global__ void prepare_kernel(const float* __restrict__ out, const DetectParams p, Workspace w) {
  const int a = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
  if (a >= p.anchors) return;
  const float* img = out + static_cast<size_t>(b) * p.anchors * p.channels;
  const size_t ba = static_cast<size_t>(b) * p.anchors + a;
  if (!p.v5) {
    float best = -INFINITY;
    int best_c = 0;
    bool nan = false;
    for (int c = 0; c < p.nc; ++c) {
      const float s = img[static_cast<size_t>(4 + c) * p.anchors + a];
      if (s > best) best = s, best_c = c;
      else if (isnan(s)) nan = true;
    }
    w.best[ba] = nan ? NAN : best;
    w.best_cls[ba] = best_c;
    return;
  }
  const float* r = img + static_cast<size_t>(a) * p.channels;
  const float obj = r[4];
  if (p.multi_label) {
    for (int c = 0; c < p.nc; ++c)
      w.planes[(static_cast<size_t>(b) * p.nc + c) * p.anchors + a] = obj > p.conf ? r[5 + c] * obj : -INFINITY;
    return;
  }
  float best = r[5] * obj;
  int best_c = 0;
  for (int c = 1; c < p.nc; ++c) {
    const float s = r[5 + c] * obj;
    if (s > best) best = s, best_c = c;
  }
  w.best[ba] = obj > p.conf ? best : NAN;
  w.best_cls[ba] = best_c;
}

// One (class, image): candidates, sort, greedy NMS. `Cap` candidates fit the block; with more, the
// first pass queues the pair for the second, and the second flags the image for the CPU.
template <int Cap, bool FirstPass>
__device__ void class_nms(const float* __restrict__ out, const DetectParams& p, const Workspace& w, uint32_t* flags,
                          int32_t* candidates, int b, int c) {
  extern __shared__ unsigned long long smem[];
  unsigned long long* keys = smem;
  float4* boxes = reinterpret_cast<float4*>(keys + Cap);
  uint8_t* removed = reinterpret_cast<uint8_t*>(boxes + Cap);
  __shared__ int n_s, nan_s, nonfinite_s;
  __shared__ uint32_t lohi_s[2];
  __shared__ unsigned tile_mask[2][32];
  __shared__ int slot_s;
  const int tid = threadIdx.x;
  const float* img = out + static_cast<size_t>(b) * p.anchors * p.channels;
  if (tid == 0) n_s = 0, nan_s = 0, nonfinite_s = 0, lohi_s[0] = 0xffffffffu, lohi_s[1] = 0u;
  __syncthreads();

  const bool multi = p.multi_label;
  const float* plane = !multi ? nullptr
                       : p.v5 ? w.planes + (static_cast<size_t>(b) * p.nc + c) * p.anchors
                              : img + static_cast<size_t>(4 + c) * p.anchors;
  const float* best = w.best + static_cast<size_t>(b) * p.anchors;
  const int* best_cls = w.best_cls + static_cast<size_t>(b) * p.anchors;
  auto consider = [&](int a, float s, int cls) {
    bool cand;
    if (multi) {
      cand = s > p.conf;
      // YOLOv8 drops an anchor with any NaN class score (torch.amax propagates it): the CPU handles it.
      if (!p.v5 && isnan(s)) nan_s = 1;
    } else {
      cand = cls == c && s > p.conf;
    }
    if (cand) {
      const int k = atomicAdd(&n_s, 1);
      if (k < Cap) keys[k] = (static_cast<unsigned long long>(desc_key(s)) << 32) | static_cast<uint32_t>(a);
    }
  };
  // Four anchors per load where the scores lie 16-byte aligned: the scan of every (class, image) is most
  // of the class kernel's time when the classes are small, and it waits on memory, not on arithmetic.
  const float* scores = multi ? plane : best;
  const bool vec = (p.anchors & 3) == 0 && (reinterpret_cast<uintptr_t>(scores) & 15) == 0 &&
                   (multi || (reinterpret_cast<uintptr_t>(best_cls) & 15) == 0);
  const int a0 = vec ? p.anchors : 0;
  if (vec) {
#pragma unroll 2
    for (int q = tid; q < p.anchors / 4; q += blockDim.x) {
      const float4 v = reinterpret_cast<const float4*>(scores)[q];
      const int4 k = multi ? make_int4(0, 0, 0, 0) : reinterpret_cast<const int4*>(best_cls)[q];
      consider(4 * q, v.x, k.x), consider(4 * q + 1, v.y, k.y), consider(4 * q + 2, v.z, k.z), consider(4 * q + 3, v.w, k.w);
    }
  }
#pragma unroll 4
  for (int a = a0 + tid; a < p.anchors; a += blockDim.x) consider(a, scores[a], multi ? 0 : best_cls[a]);
  __syncthreads();
  const int n = n_s;
  if (n == 0) {
    if (tid == 0) {
      w.kept_count[b * p.nc + c] = 0;
      if (nan_s) atomicOr(&flags[b], kDetectNotSeparable);
    }
    return;
  }
  if (n > Cap) {
    if (tid == 0) {
      w.kept_count[b * p.nc + c] = 0;
      if (nan_s) atomicOr(&flags[b], kDetectNotSeparable);
      if (FirstPass) {
        int* count = w.overflow + static_cast<size_t>(p.batch) * p.nc;
        w.overflow[atomicAdd(count, 1)] = b * p.nc + c;
      } else {
        atomicOr(&flags[b], kDetectClassOverflow);
        atomicAdd(&candidates[b], n);
      }
    }
    return;
  }

  // Best score first, then anchor order.
  int pow2 = 1;
  while (pow2 < n) pow2 <<= 1;
  for (int i = n + tid; i < pow2; i += blockDim.x) keys[i] = ~0ull;
  __syncthreads();
  block_sort(keys, pow2);

  // Offset boxes (boxes + cls * max_wh in float32), and the spread of the raw coordinates.
  const float off = static_cast<float>(c) * p.max_wh;
  float lo = INFINITY, hi = -INFINITY;
  bool finite = true;
  for (int i = tid; i < n; i += blockDim.x) {
    const float4 q = corners_at(img, p, static_cast<int>(keys[i] & 0xffffffffu));
    boxes[i] = make_float4(q.x + off, q.y + off, q.z + off, q.w + off);
    removed[i] = 0;
    finite = finite && isfinite(q.x) && isfinite(q.y) && isfinite(q.z) && isfinite(q.w);
    lo = fminf(lo, fminf(fminf(q.x, q.y), fminf(q.z, q.w)));
    hi = fmaxf(hi, fmaxf(fmaxf(q.x, q.y), fmaxf(q.z, q.w)));
  }
  // The spread, reduced in the block first: one atomic per block and bound, not one per thread.
  if (!finite) nonfinite_s = 1;
  uint32_t lo_k = finite ? asc_key(lo) : 0xffffffffu, hi_k = finite ? asc_key(hi) : 0u;
  for (int d = 16; d > 0; d >>= 1) {
    lo_k = min(lo_k, __shfl_xor_sync(kFullMask, lo_k, d));
    hi_k = max(hi_k, __shfl_xor_sync(kFullMask, hi_k, d));
  }
  if ((tid & 31) == 0 && lo_k != 0xffffffffu) atomicMin(&lohi_s[0], lo_k), atomicMax(&lohi_s[1], hi_k);
  __syncthreads();
  if (tid == 0) {
    atomicAdd(&candidates[b], n);
    if (nan_s || nonfinite_s) atomicOr(&flags[b], kDetectNotSeparable);
    if (lohi_s[0] != 0xffffffffu) atomicMin(&w.lohi[2 * b], lohi_s[0]), atomicMax(&w.lohi[2 * b + 1], lohi_s[1]);
    slot_s = -1;
    if (FirstPass && n > kHeavyMin && n <= kHeavyCap) {
      const int s = atomicAdd(&w.heavy[0], 1);
      if (s < w.heavy_slots) slot_s = s;
    }
  }
  __syncthreads();
  if (FirstPass && slot_s >= 0) {  // the heavy kernels take it from here (kept_count included)
    const int s = slot_s;
    for (int i = tid; i < n; i += blockDim.x) {
      w.heavy_keys[static_cast<size_t>(s) * kHeavyCap + i] = keys[i];
      w.heavy_boxes[static_cast<size_t>(s) * kHeavyCap + i] = boxes[i];
    }
    if (tid == 0) w.heavy[1 + 2 * s] = b * p.nc + c, w.heavy[2 + 2 * s] = n;
    return;
  }

  // Greedy NMS, best first, a tile of 32 candidates at a time, one barrier per tile:
  //   A (all warps): the previous tile's survivors remove what they suppress from this tile on, and the
  //     tile's 32 x 32 suppression mask (row r: the earlier members that suppress member r if kept);
  //   B (every warp, redundantly, so that no second barrier hands the result on): the greedy order over
  //     the tile's live members on those bits; lane r of each warp takes the r-th survivor's box for
  //     the next A; warp 0 records the survivors.
  // Why one barrier suffices: a warp still in B of tile t reads removed[] of tile t and the mask of
  // tile t, while a warp already in A of tile t + 1 writes removed[] from tile t + 1 on and the other
  // half of the double-buffered mask; no warp gets further ahead than that before the next barrier.
  unsigned long long* kept = w.kept + (static_cast<size_t>(b) * p.nc + c) * p.max_det;
  const int lane = tid & 31, warp = tid >> 5, warps = blockDim.x >> 5;
  const float4 none = make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);  // suppresses nothing
  float4 survivor = none;  // lane r: the previous tile's r-th survivor
  int tn = 0, kept_n = 0;
  for (int base = 0, parity = 0; base < n && kept_n < p.max_det; base += 32, parity ^= 1) {
    // A. Each warp takes 32 consecutive candidates at a time, one per lane, and checks them against
    // the survivors, which it reads from its own lanes.
    for (int j0 = base + warp * 32; tn && j0 < n; j0 += warps * 32) {
      const int j = j0 + lane;
      const bool live = j < n && !removed[j];
      if (!__any_sync(kFullMask, live)) continue;
      const float4 bj = live ? boxes[j] : none;
      bool hit = false;
      for (int t = 0; t < tn; ++t) {
        const float4 k = make_float4(__shfl_sync(kFullMask, survivor.x, t), __shfl_sync(kFullMask, survivor.y, t),
                                     __shfl_sync(kFullMask, survivor.z, t), __shfl_sync(kFullMask, survivor.w, t));
        hit |= suppresses(k, bj, p.iou);
      }
      if (live && hit) removed[j] = 1;
    }
    for (int r = warp; r < 32; r += warps) {
      const int i = base + r, k = base + lane;
      const bool bit = lane < r && i < n && suppresses(boxes[k], boxes[i], p.iou);
      const unsigned m = __ballot_sync(kFullMask, bit);
      if (lane == 0) tile_mask[parity][r] = m;
    }
    __syncthreads();
    // B. Member k is kept when alive, not suppressed by a kept earlier member, and max_det is not
    // reached. The rows do not depend on the decisions, so the loop's reads all go up front.
    const int i = base + lane;
    const unsigned alive = __ballot_sync(kFullMask, i < n && !removed[i]);
    unsigned keep = 0;
    const int kept0 = kept_n;
#pragma unroll
    for (int k = 0; k < 32; ++k) {
      const bool take = ((alive >> k) & 1u) && !(tile_mask[parity][k] & keep) && kept_n < p.max_det;
      keep |= static_cast<unsigned>(take) << k;
      kept_n += take;
    }
    tn = __popc(keep);
    survivor = lane < tn ? boxes[base + __fns(keep, 0, lane + 1)] : none;
    if (warp == 0 && ((keep >> lane) & 1u)) kept[kept0 + __popc(keep & ((1u << lane) - 1u))] = keys[i];
  }
  if (tid == 0) w.kept_count[b * p.nc + c] = kept_n;
}

__global__ void __launch_bounds__(kClassThreads) class_nms_kernel(const float* __restrict__ out, const DetectParams p,
                                                                  Workspace w, uint32_t* flags, int32_t* candidates) {
  class_nms<kClassCap, true>(out, p, w, flags, candidates, blockIdx.y, blockIdx.x);
}

// The pairs the first pass could not hold, a few blocks looping over them (usually none).
__global__ void __launch_bounds__(kClassThreadsLarge) class_nms_large_kernel(const float* __restrict__ out,
                                                                             const DetectParams p, Workspace w,
                                                                             uint32_t* flags, int32_t* candidates) {
  const int pairs = w.overflow[static_cast<size_t>(p.batch) * p.nc];
  for (int e = blockIdx.x; e < pairs; e += gridDim.x) {
    __syncthreads();  // the previous pair's last reads of the shared state are done
    const int bc = w.overflow[e];
    class_nms<kClassCapLarge, false>(out, p, w, flags, candidates, bc / p.nc, bc % p.nc);
  }
}

// Heavy classes, step 1: the suppression bits of every slot, a 64 x 64 tile of (kept i, later j) pairs per
// block iteration: mask[i][word of j] bit j % 64 when i < j and i suppresses j. Only tiles on or above
// the diagonal exist (the walk reads word w of row i only for w >= i / 64). Items are numbered column
// tile first, so the tiles a class of n candidates needs come first and the rest end at once.
__global__ void __launch_bounds__(kHeavyTile) heavy_mask_kernel(const DetectParams p, Workspace w) {
  __shared__ float4 cols[kHeavyTile];
  const int slots = min(w.heavy[0], w.heavy_slots), t = threadIdx.x;
  for (int e = blockIdx.x; e < slots * kHeavyPairs; e += gridDim.x) {
    const int s = e / kHeavyPairs, q = e % kHeavyPairs;
    int tc = static_cast<int>((sqrtf(8.f * q + 1.f) - 1.f) * 0.5f);  // q = tc (tc + 1) / 2 + tr, tr <= tc
    while (tc * (tc + 1) / 2 > q) --tc;
    while ((tc + 1) * (tc + 2) / 2 <= q) ++tc;
    const int tr = q - tc * (tc + 1) / 2;
    const int n = w.heavy[2 + 2 * s];
    if (tc * kHeavyTile >= n) continue;  // the same for the whole block: no barrier is skipped by part of it
    const float4* bx = w.heavy_boxes + static_cast<size_t>(s) * kHeavyCap;
    __syncthreads();  // the previous item's reads of cols are done
    const int j0 = tc * kHeavyTile;
    if (j0 + t < n) cols[t] = bx[j0 + t];
    __syncthreads();
    const int i = tr * kHeavyTile + t;
    if (i >= n) continue;
    const float4 bi = bx[i];
    const int m = min(kHeavyTile, n - j0);
    unsigned long long bits = 0;
    for (int k = 0; k < m; ++k)
      if (j0 + k > i && suppresses(bi, cols[k], p.iou)) bits |= 1ull << k;
    w.heavy_mask[(static_cast<size_t>(s) * kHeavyCap + i) * kHeavyWords + tc] = bits;
  }
}

// Heavy classes, step 2: one warp per slot walks the candidates in order, 32 rows at a time. Lane w
// keeps word w of the removed bits. A tile's own decisions run on its diagonal words (the bits among
// its 32 rows), identical in every lane; then each lane ORs the kept rows' word into its own. The next
// tile's rows are loaded while this one is decided.
__global__ void __launch_bounds__(32) heavy_walk_kernel(const DetectParams p, Workspace w) {
  const int s = blockIdx.x;
  if (s >= min(w.heavy[0], w.heavy_slots)) return;
  const int lane = threadIdx.x;
  const int bc = w.heavy[1 + 2 * s], n = w.heavy[2 + 2 * s];
  const unsigned long long* mask = w.heavy_mask + static_cast<size_t>(s) * kHeavyCap * kHeavyWords;
  const unsigned long long* keys = w.heavy_keys + static_cast<size_t>(s) * kHeavyCap;
  unsigned long long* kept = w.kept + static_cast<size_t>(bc) * p.max_det;
  unsigned long long removed = 0, cur[32], nxt[32];
  // Row base + r, word `lane`: written by the mask kernel when the row exists and the word lies on or
  // above the row's own and below the last candidate's.
  const bool lane_used = lane * 64 < n;
  auto load = [&](unsigned long long(&dst)[32], int base) {
#pragma unroll
    for (int r = 0; r < 32; ++r) {
      const int i = base + r;
      dst[r] = lane_used && i < n && lane >= (i >> 6) ? mask[static_cast<size_t>(i) * kHeavyWords + lane] : 0ull;
    }
  };
  load(nxt, 0);
  int kept_n = 0;
  for (int base = 0; base < n && kept_n < p.max_det; base += 32) {
#pragma unroll
    for (int r = 0; r < 32; ++r) cur[r] = nxt[r];
    if (base + 32 < n) load(nxt, base + 32);
    const int tw = base >> 6, shift = base & 32;
    const unsigned valid = n - base >= 32 ? kFullMask : (1u << (n - base)) - 1u;
    unsigned alive = ~static_cast<unsigned>(__shfl_sync(kFullMask, removed, tw) >> shift) & valid;
    unsigned diag[32];
#pragma unroll
    for (int r = 0; r < 32; ++r) diag[r] = static_cast<unsigned>(__shfl_sync(kFullMask, cur[r], tw) >> shift);
    unsigned keep = 0;
    const int kept0 = kept_n;
#pragma unroll
    for (int r = 0; r < 32; ++r) {
      const bool take = ((alive >> r) & 1u) && kept_n < p.max_det;
      if (take) keep |= 1u << r, alive &= ~diag[r], ++kept_n;
    }
    unsigned long long acc = 0;
#pragma unroll
    for (int r = 0; r < 32; ++r)
      if ((keep >> r) & 1u) acc |= cur[r];
    removed |= acc;
    if ((keep >> lane) & 1u) kept[kept0 + __popc(keep & ((1u << lane) - 1u))] = keys[base + lane];
  }
  if (lane == 0) w.kept_count[bc] = kept_n;
}

// One block per image: every class's survivors, in the reference's global order (score, then
// candidate order: anchor-major, then class), the first max_det written in image pixels.
__global__ void __launch_bounds__(kMergeThreads) merge_kernel(const float* __restrict__ out, const DetectParams p, Workspace w,
                                                              const UnletterboxInfo* __restrict__ info,
                                                              float* __restrict__ dets, int32_t* count, uint32_t* flags,
                                                              const int32_t* candidates) {
  extern __shared__ unsigned long long mkeys[];  // [kMergeCap], then nc + 1 class offsets
  int* offset = reinterpret_cast<int*>(mkeys + kMergeCap);
  const int b = blockIdx.x, tid = threadIdx.x;
  const int* kc = w.kept_count + b * p.nc;
  const unsigned long long* kept = w.kept + static_cast<size_t>(b) * p.nc * p.max_det;
  // Class offsets: the counts, then an inclusive scan by warp 0, 32 classes at a time.
  for (int c = tid; c < p.nc; c += blockDim.x) offset[c + 1] = kc[c];
  if (tid == 0) offset[0] = 0;
  __syncthreads();
  if (tid < 32) {
    int carry = 0;
    for (int base = 1; base <= p.nc; base += 32) {
      const int c = base + tid;
      int v = c <= p.nc ? offset[c] : 0;
      for (int d = 1; d < 32; d <<= 1) {
        const int u = __shfl_up_sync(kFullMask, v, d);
        if (tid >= d) v += u;
      }
      if (c <= p.nc) offset[c] = v + carry;
      carry += __shfl_sync(kFullMask, v, 31);
    }
  }
  __syncthreads();
  const int total = offset[p.nc];
  uint32_t f = 0;
  if (candidates[b] > p.max_nms) f |= kDetectTooMany;
  const uint32_t lo = w.lohi[2 * b], hi = w.lohi[2 * b + 1];
  if (lo != 0xffffffffu && !(static_cast<double>(asc_key_value(hi) - asc_key_value(lo)) < 0.5 * p.max_wh))
    f |= kDetectNotSeparable;
  if (total > kMergeCap) f |= kDetectTooMany;
  if (f || total == 0) {
    if (tid == 0) {
      count[b] = 0;
      if (f) atomicOr(&flags[b], f);
    }
    return;
  }
  for (int e = tid; e < total; e += blockDim.x) {
    // The class of survivor e: the last c with offset[c] <= e (empty classes share their offset).
    int lo = 0, hi = p.nc;
    while (hi - lo > 1) {
      const int mid = (lo + hi) >> 1;
      if (offset[mid] <= e) lo = mid; else hi = mid;
    }
    const unsigned long long key = kept[static_cast<size_t>(lo) * p.max_det + (e - offset[lo])];
    mkeys[e] = (key & 0xffffffff00000000ull) | (static_cast<unsigned long long>(key & 0xffffffffu) * p.nc + lo);
  }
  int pow2 = 1;
  while (pow2 < total) pow2 <<= 1;
  for (int i = total + tid; i < pow2; i += blockDim.x) mkeys[i] = ~0ull;
  __syncthreads();
  block_sort(mkeys, pow2);
  const int written = min(total, p.max_det);
  const UnletterboxInfo u = info[b];
  const float* img = out + static_cast<size_t>(b) * p.anchors * p.channels;
  float* o = dets + static_cast<size_t>(b) * p.max_det * 6;
  for (int k = tid; k < written; k += blockDim.x) {
    const unsigned long long key = mkeys[k];
    const uint32_t idx = static_cast<uint32_t>(key & 0xffffffffu);
    const float4 q = corners_at(img, p, static_cast<int>(idx / p.nc));
    float* d = o + k * 6;
    // scale_boxes: (v - pad) / gain, clipped to the image (std::clamp order).
    auto clip = [](float v, float hi) { return v < 0.f ? 0.f : (hi < v ? hi : v); };
    d[0] = clip((q.x - u.pad_left) / u.gain, u.src_w);
    d[1] = clip((q.y - u.pad_top) / u.gain, u.src_h);
    d[2] = clip((q.z - u.pad_left) / u.gain, u.src_w);
    d[3] = clip((q.w - u.pad_top) / u.gain, u.src_h);
    d[4] = desc_key_value(static_cast<uint32_t>(key >> 32));
    d[5] = static_cast<float>(idx % p.nc);
  }
  if (tid == 0) count[b] = written;
}

// One template for the vectorised (float4) and the scalar form: per_image counts elements of T.
template <typename T>
__global__ void copy_flagged_kernel(const T* __restrict__ src, T* __restrict__ dst,
                                    const uint32_t* __restrict__ flags, size_t per_image) {
  const int b = blockIdx.y;
  if (!flags[b]) return;
  const size_t base = static_cast<size_t>(b) * per_image;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < per_image; i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[base + i] = src[base + i];
}

}  // namespace

void launch_copy_flagged(const float* src, float* dst, const uint32_t* flags, int n, size_t per_image, cudaStream_t stream) {
  if (n <= 0 || per_image == 0) return;
  const bool vec = per_image % 4 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0;
  if (vec) {
    copy_flagged_kernel<float4><<<dim3(32, n), 256, 0, stream>>>(reinterpret_cast<const float4*>(src),
                                                               reinterpret_cast<float4*>(dst), flags, per_image / 4);
  } else {
    copy_flagged_kernel<float><<<dim3(32, n), 256, 0, stream>>>(src, dst, flags, per_image);
  }
  KLAUNCH("detect copy flagged");
}

size_t detect_workspace_bytes(const DetectParams& p) { return carve(nullptr, p).bytes; }

void launch_detect(const float* output, const DetectParams& p, const UnletterboxInfo* info, void* workspace, float* out,
                   int32_t* count, uint32_t* flags, int32_t* candidates, cudaStream_t stream) {
  KESTREL_CHECK(p.batch >= 1 && p.anchors >= 1 && p.nc >= 1 && p.max_det >= 1,
                "detect: batch, anchors, classes and max_det must be positive");
  KESTREL_CHECK(p.nc < 4096, "detect: at most 4095 classes (", p.nc, " asked for)");
  KESTREL_CHECK(p.iou >= 0, "detect: the IoU threshold must not be negative (the CPU path handles it)");
  KESTREL_CHECK(p.nc <= p.channels - (p.v5 ? 5 : 4), "detect: ", p.nc, " classes in a head of ", p.channels, " channels");
  const Workspace w = carve(workspace, p).w;
  init_kernel<<<(p.batch + 127) / 128, 128, 0, stream>>>(p, count, flags, candidates, w.lohi,
                                                         w.overflow + static_cast<size_t>(p.batch) * p.nc, w.heavy);
  KLAUNCH("detect init");
  if (!p.multi_label || p.v5) {
    prepare_kernel<<<dim3((p.anchors + 127) / 128, p.batch), 128, 0, stream>>>(output, p, w);
    KLAUNCH("detect prepare");
  }
  opt_in_shared_memory(class_nms_kernel, class_smem(kClassCap));
  opt_in_shared_memory(class_nms_large_kernel, class_smem(kClassCapLarge));
  opt_in_shared_memory(merge_kernel, kMergeCap * sizeof(unsigned long long) + 4096 * sizeof(int));
  class_nms_kernel<<<dim3(p.nc, p.batch), kClassThreads, class_smem(kClassCap), stream>>>(output, p, w, flags, candidates);
  KLAUNCH("detect class NMS");
  // Up to a wave of 64-thread blocks (an SM holds 32); fewer where few slots exist, since most of a slot's
  // tile pairs lie beyond its candidates and end at once.
  heavy_mask_kernel<<<std::min(kHeavyMaskBlocks, std::max(1, w.heavy_slots * kHeavyPairs / 4)), kHeavyTile, 0, stream>>>(p, w);
  KLAUNCH("detect heavy classes' suppression bits");
  heavy_walk_kernel<<<w.heavy_slots, 32, 0, stream>>>(p, w);
  KLAUNCH("detect heavy classes' greedy walk");
  class_nms_large_kernel<<<64, kClassThreadsLarge, class_smem(kClassCapLarge), stream>>>(output, p, w, flags, candidates);
  KLAUNCH("detect class NMS (large classes)");
  merge_kernel<<<p.batch, kMergeThreads, kMergeCap * sizeof(unsigned long long) + (p.nc + 1) * sizeof(int), stream>>>(
      output, p, w, info, out, count, flags, candidates);
  KLAUNCH("detect merge");
}

}  // namespace kestrel::cuda
