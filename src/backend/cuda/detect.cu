// The fused YOLO heads, reading the per-level maps in whatever layout the trunk produced (strides):
//   kestrel.DetectV8: [B, 4*reg_max + nc, H_i, W_i] per level -> [B, 4 + nc, sum H_i W_i]
//     DFL (softmax expectation over reg_max bins of each side), anchors at cell centres,
//     xywh = ((x1y1 + x2y2) / 2, x2y2 - x1y1) * stride, class scores sigmoid.
//   kestrel.DetectV5: [B, na*(5+nc), H_i, W_i] per level -> [B, sum na H_i W_i, 5 + nc]
//     sigmoid everything; xy = (2s - 0.5 + grid) * stride; wh = (2s)^2 * anchor.
// One thread per output element, the output's innermost dim fastest (coalesced writes). Exponentials
// use the hardware exp2 (relative error ~1e-7: far inside even the FP32 tolerance of 1e-4).
#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

constexpr int kMaxLevels = 8;

struct Level {
  const void* x;
  int H, W, start;        // start: first anchor (V8) / row (V5) of this level in the output
  long long sn, sc, sh, sw;  // element strides of the map
  float stride;
  float anchor_w[4], anchor_h[4];  // V5
};

struct DetectArgs {
  Level lv[kMaxLevels];
  int levels, batch, total_anchors, nc, reg_max, na, dt;
  long long out_sb, out_sr, out_sa;  // output strides: batch, row (channel / field), anchor
};

__device__ __forceinline__ int find_level(const DetectArgs& a, int anchor) {
  int l = 0;
  while (l + 1 < a.levels && anchor >= a.lv[l + 1].start) ++l;
  return l;
}

// Expected bin of a side's reg_max logits: softmax, then the expectation with weights 0..R-1, in the
// CPU reference's order (each probability e/sum times its bin).
__device__ float dfl(const Level& L, int dt, long long base, int side, int reg_max) {
  float mx = -INFINITY;
  for (int k = 0; k < reg_max; ++k) mx = fmaxf(mx, load_as_float(L.x, dt, base + (long long)(side * reg_max + k) * L.sc));
  float sum = 0.f;
  for (int k = 0; k < reg_max; ++k) sum += __expf(load_as_float(L.x, dt, base + (long long)(side * reg_max + k) * L.sc) - mx);
  float acc = 0.f;
  for (int k = 0; k < reg_max; ++k)
    acc += (__expf(load_as_float(L.x, dt, base + (long long)(side * reg_max + k) * L.sc) - mx) / sum) * static_cast<float>(k);
  return acc;
}

__global__ void detect_v8_kernel(float* __restrict__ y, const __grid_constant__ DetectArgs a) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const int rows = 4 + a.nc;
  const long long total = (long long)a.batch * rows * a.total_anchors;
  if (i >= total) return;
  const int anchor = static_cast<int>(i % a.total_anchors);
  const int row = static_cast<int>((i / a.total_anchors) % rows);
  const int b = static_cast<int>(i / ((long long)a.total_anchors * rows));
  const Level& L = a.lv[find_level(a, anchor)];
  const int p = anchor - L.start, px = p % L.W, py = p / L.W;
  const long long base = b * L.sn + py * L.sh + px * L.sw;
  float v;
  if (row >= 4) {
    v = sigmoidf_fast(load_as_float(L.x, a.dt, base + (long long)(4 * a.reg_max + row - 4) * L.sc));
  } else {
    // x rows use sides l (0) and r (2); y rows use t (1) and b (3).
    const int axis = row & 1;
    const float lo = dfl(L, a.dt, base, axis, a.reg_max), hi = dfl(L, a.dt, base, axis + 2, a.reg_max);
    const float c = (axis ? py : px) + 0.5f;
    const float x1 = c - lo, x2 = c + hi;
    v = (row < 2 ? (x1 + x2) / 2.f : x2 - x1) * L.stride;
  }
  y[b * a.out_sb + row * a.out_sr + anchor * a.out_sa] = v;
}

// The tiled DetectV8: a block takes 64 anchors of one level and image, stages their 4 reg_max + nc
// channels in shared memory (16 bytes of channels per load for channels-last FP16 maps), computes the
// four DFL distances (one thread per anchor side), then writes every output row with the anchors
// fastest (coalesced). The per-element kernel above re-reads channels with a stride per thread.
constexpr int kTileAnchors = 64;

__global__ void __launch_bounds__(256) detect_v8_tiled_kernel(float* __restrict__ y, const __grid_constant__ DetectArgs a, int C) {
  extern __shared__ float sm[];
  float* sx = sm;                                 // [kTileAnchors][C + 1]
  float* sd = sm + kTileAnchors * (C + 1);        // [kTileAnchors][4]
  // Block -> (image, level, tile of 64 anchors).
  int blocks_per_image = 0;
  for (int l = 0; l < a.levels; ++l) blocks_per_image += (a.lv[l].H * a.lv[l].W + kTileAnchors - 1) / kTileAnchors;
  const int b = blockIdx.x / blocks_per_image;
  int rem = blockIdx.x % blocks_per_image, l = 0;
  for (; l < a.levels; ++l) {
    const int nb = (a.lv[l].H * a.lv[l].W + kTileAnchors - 1) / kTileAnchors;
    if (rem < nb) break;
    rem -= nb;
  }
  const Level& L = a.lv[l];
  const int hw = L.H * L.W, p0 = rem * kTileAnchors, count = min(kTileAnchors, hw - p0);
  // Stage the tile. FP16 channels-last maps: 16-byte loads of 8 channels, the anchors fastest across
  // the threads so that the shared-memory stores (row stride C + 1, odd) fall in 32 different banks --
  // with the channels fastest, lanes 8 floats apart stored into 4 banks, 8-way conflicts -- and four
  // loads in flight per thread before the first store.
  const bool vec = a.dt == kF16 && L.sc == 1 && C % 8 == 0 && L.sw % 8 == 0 && L.sh % 8 == 0 && L.sn % 8 == 0 &&
                   reinterpret_cast<uintptr_t>(L.x) % 16 == 0;
  if (vec) {
    const __half* src = static_cast<const __half*>(L.x) + b * L.sn;
    const int items = count * (C / 8);
    constexpr int kInFlight = 4;
    for (int i0 = threadIdx.x; i0 < items; i0 += 256 * kInFlight) {
      uint4 raw[kInFlight];
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        const int i = i0 + u * 256, al = i % count, p = p0 + al;
        if (i < items)
          raw[u] = __ldg(reinterpret_cast<const uint4*>(src + (p / L.W) * L.sh + (p % L.W) * L.sw + (i / count) * 8));
      }
#pragma unroll
      for (int u = 0; u < kInFlight; ++u) {
        const int i = i0 + u * 256;
        if (i >= items) break;
        float* dst = sx + (i % count) * (C + 1) + (i / count) * 8;
        const __half2* h = reinterpret_cast<const __half2*>(&raw[u]);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float2 f = __half22float2(h[e]);
          dst[2 * e] = f.x;
          dst[2 * e + 1] = f.y;
        }
      }
    }
  } else {
    // A warp per anchor, lanes along the channels (contiguous for channels-last maps).
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    for (int al = warp; al < count; al += 8) {
      const int p = p0 + al;
      const long long base = b * L.sn + (p / L.W) * L.sh + (p % L.W) * L.sw;
      float* row = sx + al * (C + 1);
      for (int c = lane; c < C; c += 32) row[c] = load_as_float(L.x, a.dt, base + (long long)c * L.sc);
    }
  }
  __syncthreads();
  {
    const int al = threadIdx.x >> 2, side = threadIdx.x & 3;  // 64 anchors x 4 sides = 256 threads
    if (al < count) {
      const float* bins = sx + al * (C + 1) + side * a.reg_max;
      float mx = -INFINITY;
      for (int k = 0; k < a.reg_max; ++k) mx = fmaxf(mx, bins[k]);
      float sum = 0.f;
      for (int k = 0; k < a.reg_max; ++k) sum += __expf(bins[k] - mx);
      float acc = 0.f;
      for (int k = 0; k < a.reg_max; ++k) acc += (__expf(bins[k] - mx) / sum) * static_cast<float>(k);
      sd[al * 4 + side] = acc;
    }
  }
  __syncthreads();
  const int rows = 4 + a.nc;
  const int al = threadIdx.x & 63, p = p0 + al;
  if (al >= count) return;
  const float cx = static_cast<float>(p % L.W) + 0.5f, cy = static_cast<float>(p / L.W) + 0.5f;
  float* out = y + b * a.out_sb + (long long)(L.start + p) * a.out_sa;
  for (int row = threadIdx.x >> 6; row < rows; row += 4) {
    float v;
    if (row >= 4) {
      v = sigmoidf_fast(sx[al * (C + 1) + 4 * a.reg_max + row - 4]);
    } else {
      const int axis = row & 1;
      const float lo = sd[al * 4 + axis], hi = sd[al * 4 + axis + 2];
      const float c = axis ? cy : cx;
      const float x1 = c - lo, x2 = c + hi;
      v = (row < 2 ? (x1 + x2) / 2.f : x2 - x1) * L.stride;
    }
    out[row * a.out_sr] = v;
  }
}

__global__ void detect_v5_kernel(float* __restrict__ y, const __grid_constant__ DetectArgs a) {
  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  const int fields = 5 + a.nc;
  const long long total = (long long)a.batch * a.total_anchors * fields;
  if (i >= total) return;
  const int f = static_cast<int>(i % fields);
  const int row = static_cast<int>((i / fields) % a.total_anchors);
  const int b = static_cast<int>(i / ((long long)fields * a.total_anchors));
  const Level& L = a.lv[find_level(a, row)];
  const int r = row - L.start;  // (anchor, y, x) within the level
  const int px = r % L.W, py = (r / L.W) % L.H, an = r / (L.W * L.H);
  const float s = sigmoidf_fast(load_as_float(L.x, a.dt, b * L.sn + (long long)(an * fields + f) * L.sc + py * L.sh + px * L.sw));
  float v = s;
  // The export's grid holds (x - 0.5, y - 0.5), added to 2s: the CPU reference keeps that order.
  if (f < 2) v = (s * 2.f + (static_cast<float>(f == 0 ? px : py) - 0.5f)) * L.stride;
  else if (f < 4) v = (s * 2.f) * (s * 2.f) * (f == 2 ? L.anchor_w[an] : L.anchor_h[an]);
  y[b * a.out_sb + row * a.out_sr + f * a.out_sa] = v;
}

std::vector<float> floats_attr(const Attributes& at, const char* k) {
  auto it = at.all().find(k);
  KESTREL_CHECK(it != at.all().end(), "missing attribute '", k, "'");
  if (auto* f = std::get_if<std::vector<float>>(&it->second)) return *f;
  if (auto* i = std::get_if<std::vector<int64_t>>(&it->second)) return std::vector<float>(i->begin(), i->end());
  fail("attribute '", k, "' is not a list of numbers");
}

class DetectLayer : public Layer {
 public:
  explicit DetectLayer(const LayerSpec& s) : Layer(s) {
    v8_ = s.op == "kestrel.DetectV8";
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(y.dtype == DType::F32, "internal: detect output must be float32");
    KESTREL_CHECK(s.in.size() <= static_cast<size_t>(kMaxLevels), s.op, ": at most ", kMaxLevels, " levels");
    a_ = {};
    a_.levels = static_cast<int>(s.in.size());
    a_.batch = static_cast<int>(y.shape[0]);
    a_.nc = static_cast<int>(s.attrs.i("num_classes"));
    a_.reg_max = v8_ ? static_cast<int>(s.attrs.i("reg_max", 16)) : 0;
    a_.na = v8_ ? 1 : static_cast<int>(s.attrs.i("num_anchors", 3));
    KESTREL_CHECK(a_.na <= 4, s.op, ": at most 4 anchors per level");
    const std::vector<float> strides = floats_attr(s.attrs, "strides");
    KESTREL_CHECK(strides.size() == s.in.size(), s.op, " node '", s.name, "': ", strides.size(), " strides for ", s.in.size(), " levels");
    std::vector<float> anchors;
    if (!v8_) {
      anchors = floats_attr(s.attrs, "anchors");
      KESTREL_CHECK(anchors.size() == s.in.size() * a_.na * 2, s.op, " node '", s.name, "': anchors must hold levels x ", a_.na, " x 2 values");
    }
    int start = 0;
    for (size_t l = 0; l < s.in.size(); ++l) {
      const TensorMeta& x = *s.in[l];
      KESTREL_CHECK(x.rank() == 4, s.op, ": level maps must be 4-D");
      if (l == 0) a_.dt = static_cast<int>(x.dtype);
      KESTREL_CHECK(static_cast<int>(x.dtype) == a_.dt, "internal: detect levels differ in dtype");
      Level& L = a_.lv[l];
      L.H = static_cast<int>(x.shape[2]);
      L.W = static_cast<int>(x.shape[3]);
      L.start = start;
      L.sn = x.strides[0];
      L.sc = x.strides[1];
      L.sh = x.strides[2];
      L.sw = x.strides[3];
      L.stride = strides[l];
      for (int k = 0; k < a_.na && !v8_; ++k) {
        L.anchor_w[k] = anchors[(l * a_.na + k) * 2];
        L.anchor_h[k] = anchors[(l * a_.na + k) * 2 + 1];
      }
      start += a_.na * L.H * L.W;
    }
    a_.total_anchors = start;
    if (v8_) {
      KESTREL_CHECK(y.shape[1] == 4 + a_.nc && y.shape[2] == start, s.op, ": output shape ", shape_str(y.shape));
      a_.out_sb = y.strides[0], a_.out_sr = y.strides[1], a_.out_sa = y.strides[2];
    } else {
      KESTREL_CHECK(y.shape[1] == start && y.shape[2] == 5 + a_.nc, s.op, ": output shape ", shape_str(y.shape));
      a_.out_sb = y.strides[0], a_.out_sr = y.strides[1], a_.out_sa = y.strides[2];
    }
    total_ = static_cast<long long>(y.numel());
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!total_) return;
    DetectArgs a = a_;
    for (int l = 0; l < a.levels; ++l) a.lv[l].x = io.in[l];
    const unsigned blocks = static_cast<unsigned>((total_ + 255) / 256);
    const int C = 4 * a.reg_max + a.nc;
    const size_t smem = static_cast<size_t>(kTileAnchors) * (C + 1 + 4) * sizeof(float);
    if (v8_ && smem <= 48 * 1024) {
      int tiles = 0;
      for (int l = 0; l < a.levels; ++l) tiles += (a.lv[l].H * a.lv[l].W + kTileAnchors - 1) / kTileAnchors;
      if (tiles * a.batch > 0)
        detect_v8_tiled_kernel<<<tiles * a.batch, 256, smem, stream>>>(static_cast<float*>(io.out[0]), a, C);
    } else if (v8_) {
      detect_v8_kernel<<<blocks, 256, 0, stream>>>(static_cast<float*>(io.out[0]), a);
    } else {
      detect_v5_kernel<<<blocks, 256, 0, stream>>>(static_cast<float*>(io.out[0]), a);
    }
    KLAUNCH("detect");
  }

 private:
  DetectArgs a_;
  bool v8_ = true;
  long long total_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_detect(const LayerSpec& s) { return std::make_unique<DetectLayer>(s); }

}  // namespace kestrel::cuda
