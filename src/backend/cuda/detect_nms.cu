// Detections on the GPU in the CPU reference's arithmetic (src/yolo/head_decode.cpp, nms.cpp):
//   prepare  (best class only, or YOLOv5's obj * cls): per anchor, the best class or the score planes;
//   classes  one block per (class, image): collect that class's candidates (score > conf), sort them
//            best first (ties: anchor order), greedy NMS on the class-offset boxes in float32 exactly as
//            torchvision, keep at most max_det;
//   merge    one warp per image: the max_det best of the per-class survivors in the reference's global
//            order (score, then anchor * nc + class), boxes back to image pixels (scale_boxes).
// Class-offset NMS never suppresses across classes when every box lies within half the offset, which
// is the condition under which the CPU reference runs per class too; an image outside it (or with a
// NaN score, more than max_nms candidates, or a class over the block's capacity) is flagged for the
// CPU path. Built with --fmad=false: no fused multiply-add may change a rounding the CPU makes.
#include <atomic>
#include <cfloat>
#include <cstdint>

#include "backend/cuda/check.h"
#include "backend/cuda/yolo_kernels.h"

namespace kestrel::cuda {

namespace {

constexpr int kClassThreads = 512;
constexpr int kClassCap = 4096;  // candidates of one class of one image held in shared memory
constexpr size_t kClassSmem = kClassCap * (sizeof(unsigned long long) + sizeof(float4) + 1);

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

struct Workspace {
  float* best;              // [B, A] best class score (non-multi-label); NaN: the anchor is dropped
  int* best_cls;            // [B, A]
  float* planes;            // [B, nc, A] YOLOv5 obj * cls (multi-label)
  unsigned long long* kept; // [B, nc, max_det] per-class survivors' keys (score key << 32 | anchor)
  int* kept_count;          // [B, nc]
  uint32_t* lohi;           // [B, 2] smallest and largest candidate coordinate (asc_key)
};

size_t align256(size_t n) { return (n + 255) & ~size_t{255}; }

Workspace carve(void* base, const DetectParams& p) {
  char* c = static_cast<char*>(base);
  const size_t ba = static_cast<size_t>(p.batch) * p.anchors;
  Workspace w{};
  auto take = [&](size_t bytes) {
    void* r = c;
    c += align256(bytes);
    return r;
  };
  w.best = static_cast<float*>(take(ba * sizeof(float)));
  w.best_cls = static_cast<int*>(take(ba * sizeof(int)));
  w.planes = static_cast<float*>(take(p.v5 && p.multi_label ? ba * p.nc * sizeof(float) : 0));
  w.kept = static_cast<unsigned long long*>(take(static_cast<size_t>(p.batch) * p.nc * p.max_det * 8));
  w.kept_count = static_cast<int*>(take(static_cast<size_t>(p.batch) * p.nc * sizeof(int)));
  w.lohi = static_cast<uint32_t*>(take(static_cast<size_t>(p.batch) * 2 * sizeof(uint32_t)));
  return w;
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

__global__ void init_kernel(const DetectParams p, int32_t* count, uint32_t* flags, int32_t* candidates, uint32_t* lohi) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
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

__global__ void __launch_bounds__(kClassThreads) class_nms_kernel(const float* __restrict__ out, const DetectParams p,
                                                                  Workspace w, uint32_t* flags, int32_t* candidates) {
  extern __shared__ unsigned long long smem[];
  unsigned long long* keys = smem;
  float4* boxes = reinterpret_cast<float4*>(keys + kClassCap);
  uint8_t* removed = reinterpret_cast<uint8_t*>(boxes + kClassCap);
  __shared__ int n_s, nan_s, nonfinite_s;
  const int c = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
  const float* img = out + static_cast<size_t>(b) * p.anchors * p.channels;
  if (tid == 0) n_s = 0, nan_s = 0, nonfinite_s = 0;
  __syncthreads();

  const bool multi = p.multi_label;
  const float* plane = !multi ? nullptr
                       : p.v5 ? w.planes + (static_cast<size_t>(b) * p.nc + c) * p.anchors
                              : img + static_cast<size_t>(4 + c) * p.anchors;
  const float* best = w.best + static_cast<size_t>(b) * p.anchors;
  const int* best_cls = w.best_cls + static_cast<size_t>(b) * p.anchors;
  for (int a = tid; a < p.anchors; a += blockDim.x) {
    float s;
    bool cand;
    if (multi) {
      s = plane[a];
      cand = s > p.conf;
      // YOLOv8 drops an anchor with any NaN class score (torch.amax propagates it): the CPU handles it.
      if (!p.v5 && isnan(s)) nan_s = 1;
    } else {
      s = best[a];
      cand = best_cls[a] == c && s > p.conf;
    }
    if (cand) {
      const int k = atomicAdd(&n_s, 1);
      if (k < kClassCap) keys[k] = (static_cast<unsigned long long>(desc_key(s)) << 32) | static_cast<uint32_t>(a);
    }
  }
  __syncthreads();
  const int n = n_s;
  if (n == 0) {
    if (tid == 0) {
      w.kept_count[b * p.nc + c] = 0;
      if (nan_s) atomicOr(&flags[b], kDetectNotSeparable);
    }
    return;
  }
  if (n > kClassCap) {
    if (tid == 0) {
      w.kept_count[b * p.nc + c] = 0;
      atomicOr(&flags[b], kDetectClassOverflow);
      atomicAdd(&candidates[b], n);
    }
    return;
  }

  // Bitonic sort of the keys, ascending (best score first, then anchor), padded to a power of two.
  int pow2 = 1;
  while (pow2 < n) pow2 <<= 1;
  for (int i = n + tid; i < pow2; i += blockDim.x) keys[i] = ~0ull;
  __syncthreads();
  for (int k = 2; k <= pow2; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = tid; i < pow2; i += blockDim.x) {
        const int ixj = i ^ j;
        if (ixj > i) {
          const unsigned long long x = keys[i], y = keys[ixj];
          if ((x > y) == ((i & k) == 0)) keys[i] = y, keys[ixj] = x;
        }
      }
      __syncthreads();
    }
  }

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
  if (!finite) nonfinite_s = 1;
  if (finite) {
    atomicMin(&w.lohi[2 * b], asc_key(lo));
    atomicMax(&w.lohi[2 * b + 1], asc_key(hi));
  }
  __syncthreads();
  if (tid == 0) {
    atomicAdd(&candidates[b], n);
    if (nan_s || nonfinite_s) atomicOr(&flags[b], kDetectNotSeparable);
  }

  // Greedy NMS, best first. Only a kept box writes `removed`, so a skipped one needs no barrier.
  unsigned long long* kept = w.kept + (static_cast<size_t>(b) * p.nc + c) * p.max_det;
  int kept_n = 0;
  for (int i = 0; i < n; ++i) {
    if (removed[i]) continue;
    if (tid == 0) kept[kept_n] = keys[i];
    if (++kept_n == p.max_det) break;
    const float4 bi = boxes[i];
    const float area_i = (bi.z - bi.x) * (bi.w - bi.y);
    for (int j = i + 1 + tid; j < n; j += blockDim.x) {
      if (removed[j]) continue;
      const float4 bj = boxes[j];
      // Most pairs do not intersect: then inter is 0, IoU is 0 (or NaN for two empty boxes) and never
      // above a threshold >= 0, so the division is skipped. (xx2 - xx1 > 0 exactly when xx2 > xx1.)
      const float xx1 = fmaxf(bi.x, bj.x), xx2 = fminf(bi.z, bj.z);
      if (!(xx2 > xx1)) continue;
      const float yy1 = fmaxf(bi.y, bj.y), yy2 = fminf(bi.w, bj.w);
      if (!(yy2 > yy1)) continue;
      const float inter = (xx2 - xx1) * (yy2 - yy1);
      const float area_j = (bj.z - bj.x) * (bj.w - bj.y);
      const float ovr = inter / (area_i + area_j - inter);
      if (static_cast<double>(ovr) > p.iou) removed[j] = 1;
    }
    __syncthreads();
  }
  if (tid == 0) w.kept_count[b * p.nc + c] = kept_n;
}

// One warp per image: repeatedly take the best head of the per-class survivor lists.
__global__ void merge_kernel(const float* __restrict__ out, const DetectParams p, Workspace w,
                             const UnletterboxInfo* __restrict__ info, float* __restrict__ dets, int32_t* count,
                             uint32_t* flags, const int32_t* candidates) {
  extern __shared__ int head[];  // [nc]
  const int b = blockIdx.x, lane = threadIdx.x;
  const float* img = out + static_cast<size_t>(b) * p.anchors * p.channels;
  const int* kc = w.kept_count + b * p.nc;
  const unsigned long long* kept = w.kept + static_cast<size_t>(b) * p.nc * p.max_det;
  for (int c = lane; c < p.nc; c += 32) head[c] = 0;
  __syncwarp();
  const UnletterboxInfo u = info[b];
  float* o = dets + static_cast<size_t>(b) * p.max_det * 6;
  int written = 0;
  for (; written < p.max_det; ++written) {
    unsigned long long best = ~0ull;
    int best_c = -1;
    for (int c = lane; c < p.nc; c += 32) {
      if (head[c] >= kc[c]) continue;
      const unsigned long long k = kept[static_cast<size_t>(c) * p.max_det + head[c]];
      // The reference's global order: score, then candidate order (anchor-major, then class).
      const unsigned long long g =
          (k & 0xffffffff00000000ull) | (static_cast<unsigned long long>(k & 0xffffffffu) * p.nc + c);
      if (g < best) best = g, best_c = c;
    }
    for (int s = 16; s > 0; s >>= 1) {
      const unsigned long long ob = __shfl_xor_sync(0xffffffffu, best, s);
      const int oc = __shfl_xor_sync(0xffffffffu, best_c, s);
      if (ob < best) best = ob, best_c = oc;
    }
    if (best_c < 0) break;
    if (lane == 0) {
      const int a = static_cast<int>((best & 0xffffffffu) / p.nc);
      const float4 q = corners_at(img, p, a);
      float* d = o + written * 6;
      // scale_boxes: (v - pad) / gain, clipped to the image (std::clamp order).
      auto clip = [](float v, float hi) { return v < 0.f ? 0.f : (hi < v ? hi : v); };
      d[0] = clip((q.x - u.pad_left) / u.gain, u.src_w);
      d[1] = clip((q.y - u.pad_top) / u.gain, u.src_h);
      d[2] = clip((q.z - u.pad_left) / u.gain, u.src_w);
      d[3] = clip((q.w - u.pad_top) / u.gain, u.src_h);
      d[4] = desc_key_value(static_cast<uint32_t>(best >> 32));
      d[5] = static_cast<float>(best_c);
    }
    if ((best_c & 31) == lane) ++head[best_c];
    __syncwarp();
  }
  if (lane == 0) {
    count[b] = written;
    uint32_t f = 0;
    if (candidates[b] > p.max_nms) f |= kDetectTooMany;
    const uint32_t lo = w.lohi[2 * b], hi = w.lohi[2 * b + 1];
    if (lo != 0xffffffffu && !(static_cast<double>(asc_key_value(hi) - asc_key_value(lo)) < 0.5 * p.max_wh))
      f |= kDetectNotSeparable;
    if (f) atomicOr(&flags[b], f);
  }
}

__global__ void copy_flagged_kernel(const float4* __restrict__ src, float4* __restrict__ dst,
                                    const uint32_t* __restrict__ flags, size_t per_image4) {
  const int b = blockIdx.y;
  if (!flags[b]) return;
  const size_t base = static_cast<size_t>(b) * per_image4;
  for (size_t i = static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < per_image4; i += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[base + i] = src[base + i];
}

__global__ void copy_flagged_scalar_kernel(const float* __restrict__ src, float* __restrict__ dst,
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
    copy_flagged_kernel<<<dim3(32, n), 256, 0, stream>>>(reinterpret_cast<const float4*>(src), reinterpret_cast<float4*>(dst),
                                                       flags, per_image / 4);
  } else {
    copy_flagged_scalar_kernel<<<dim3(32, n), 256, 0, stream>>>(src, dst, flags, per_image);
  }
  KLAUNCH("detect copy flagged");
}

size_t detect_workspace_bytes(const DetectParams& p) {
  const size_t ba = static_cast<size_t>(p.batch) * p.anchors;
  return align256(ba * sizeof(float)) + align256(ba * sizeof(int)) +
         align256(p.v5 && p.multi_label ? ba * p.nc * sizeof(float) : 0) +
         align256(static_cast<size_t>(p.batch) * p.nc * p.max_det * 8) +
         align256(static_cast<size_t>(p.batch) * p.nc * sizeof(int)) +
         align256(static_cast<size_t>(p.batch) * 2 * sizeof(uint32_t));
}

void launch_detect(const float* output, const DetectParams& p, const UnletterboxInfo* info, void* workspace, float* out,
                   int32_t* count, uint32_t* flags, int32_t* candidates, cudaStream_t stream) {
  KESTREL_CHECK(p.batch >= 1 && p.anchors >= 1 && p.nc >= 1 && p.max_det >= 1,
                "detect: batch, anchors, classes and max_det must be positive");
  KESTREL_CHECK(p.iou >= 0, "detect: the IoU threshold must not be negative (the CPU path handles it)");
  KESTREL_CHECK(p.nc <= p.channels - (p.v5 ? 5 : 4), "detect: ", p.nc, " classes in a head of ", p.channels, " channels");
  const Workspace w = carve(workspace, p);
  init_kernel<<<(p.batch + 127) / 128, 128, 0, stream>>>(p, count, flags, candidates, w.lohi);
  KLAUNCH("detect init");
  if (!p.multi_label || p.v5) {
    prepare_kernel<<<dim3((p.anchors + 127) / 128, p.batch), 128, 0, stream>>>(output, p, w);
    KLAUNCH("detect prepare");
  }
  // The shared-memory opt-in is a property of the kernel on each device.
  static std::atomic<uint64_t> attr_set{0};
  int dev = 0;
  KCUDA(cudaGetDevice(&dev));
  const uint64_t bit = uint64_t{1} << (dev & 63);
  if (!(attr_set.load() & bit)) {
    KCUDA(cudaFuncSetAttribute(class_nms_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kClassSmem)));
    attr_set.fetch_or(bit);
  }
  class_nms_kernel<<<dim3(p.nc, p.batch), kClassThreads, kClassSmem, stream>>>(output, p, w, flags, candidates);
  KLAUNCH("detect class NMS");
  merge_kernel<<<p.batch, 32, p.nc * sizeof(int), stream>>>(output, p, w, info, out, count, flags, candidates);
  KLAUNCH("detect merge");
}

}  // namespace kestrel::cuda
