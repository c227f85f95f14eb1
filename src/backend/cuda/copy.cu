// Data movement: Identity/Reshape/Flatten/Squeeze/Unsqueeze, layout conversions (kestrel.Convert),
// Transpose, Slice, Split, Concat, Expand, Tile, Gather and Pad. All but the last three are one strided
// copy kernel: output element i (row-major in the output view) takes input element i (row-major in the
// input view), so transposes, slices and concat parts are just strides and pointer offsets. Inputs
// and outputs the planner turned into views of each other are skipped (attrs kestrel_skip_in/out).
#include <algorithm>
#include <type_traits>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"
#include "ir/op_registry.h"

namespace kestrel::cuda {

namespace {

template <typename E>
__global__ void copy_kernel(const E* __restrict__ in, Strided is, E* __restrict__ out, Strided os, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[strided_offset(os, i)] = in[strided_offset(is, i)];
}

// A copy whose input and output are contiguous along different dims (a transpose): 32x32 tiles through
// shared memory, so both the reads (along the input's unit-stride dim a) and the writes (along the
// output's, b) coalesce; the element-wise kernel writes one of the two with a stride (~10x slower on
// the attention block's [B, heads, N, N] transpose). The other dims are `rest` (same shape both sides).
struct TiledCopy {
  Strided rest_in, rest_out;
  int na, nb;           // extents of dims a and b
  int in_b, out_a;      // input stride of b, output stride of a (a's input stride and b's output are 1)
  int rest_n;
};
constexpr int kTileDim = 32, kTileRows = 8;

// E: the element in shared memory; TI -> E -> TO are conversions (the identity for a plain copy; fp16
// <-> fp32 for the planner's layout conversions, e.g. YOLO11's attention: channels-last fp16 conv
// outputs read as NCHW fp32 MatMul operands and back).
template <typename TO, typename TI>
__device__ __forceinline__ TO convert_to(TI v) {
  if constexpr (std::is_same_v<TO, TI>) return v;
  else if constexpr (std::is_same_v<TI, __half>) return __half2float(v);  // to float
  else return __float2half_rn(v);                                         // float to half
}

template <typename TI, typename TO, typename E = TO>
__global__ void tiled_copy_kernel(const TI* __restrict__ in, TO* __restrict__ out, const __grid_constant__ TiledCopy t) {
  __shared__ E tile[kTileDim][kTileDim + 1];
  const int a0 = blockIdx.x * kTileDim, b0 = blockIdx.y * kTileDim;
  for (int r = blockIdx.z; r < t.rest_n; r += gridDim.z) {
    const TI* src = in + strided_offset(t.rest_in, r);
    TO* dst = out + strided_offset(t.rest_out, r);
    const int a = a0 + threadIdx.x;
    for (int j = threadIdx.y; j < kTileDim; j += kTileRows) {
      const int b = b0 + j;
      if (a < t.na && b < t.nb) tile[j][threadIdx.x] = convert_to<E>(src[a + b * t.in_b]);
    }
    __syncthreads();
    const int b = b0 + threadIdx.x;
    for (int j = threadIdx.y; j < kTileDim; j += kTileRows) {
      const int aa = a0 + j;
      if (aa < t.na && b < t.nb) dst[b + aa * t.out_a] = convert_to<TO>(tile[threadIdx.x][j]);
    }
    __syncthreads();
  }
}

// The tiled form of a same-dtype copy, when its views make one: both views of one shape (a Reshape's
// copy decomposes each side by its own shape: its dims do not correspond), a dim with input stride 1
// and another with output stride 1, both at least a tile's quarter long.
bool make_tiled(const Strided& is, const Strided& os, TiledCopy* t) {
  if (is.rank != os.rank) return false;
  for (int d = 0; d < is.rank; ++d)
    if (is.shape[d] != os.shape[d]) return false;
  int da = -1, db = -1;
  for (int d = 0; d < is.rank; ++d) {
    if (is.stride[d] == 1) da = d;
    if (os.stride[d] == 1) db = d;
  }
  if (da < 0 || db < 0 || da == db || is.shape[da] < 8 || is.shape[db] < 8) return false;
  *t = TiledCopy{};
  t->na = is.shape[da];
  t->nb = is.shape[db];
  t->in_b = is.stride[db];
  t->out_a = os.stride[da];
  t->rest_n = 1;
  for (int d = 0; d < is.rank; ++d) {
    if (d == da || d == db) continue;
    const int r = t->rest_in.rank++;
    t->rest_out.rank++;
    t->rest_in.shape[r] = t->rest_out.shape[r] = is.shape[d];
    t->rest_in.stride[r] = is.stride[d];
    t->rest_out.stride[r] = os.stride[d];
    t->rest_n *= is.shape[d];
  }
  return true;
}

template <typename TI, typename TO = TI>
void launch_tiled(const void* in, void* out, const TiledCopy& t, cudaStream_t stream) {
  const dim3 grid((t.na + kTileDim - 1) / kTileDim, (t.nb + kTileDim - 1) / kTileDim, std::min(t.rest_n, 65535));
  tiled_copy_kernel<TI, TO><<<grid, dim3(kTileDim, kTileRows), 0, stream>>>(static_cast<const TI*>(in), static_cast<TO*>(out), t);
}

__global__ void convert_kernel(const void* in, int idt, Strided is, void* out, int odt, Strided os, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) store_from_float(out, odt, strided_offset(os, i), load_as_float(in, idt, strided_offset(is, i)));
}

// One strided copy: input and output views of the same element count, possibly different dtypes.
struct CopyOp {
  Strided is{}, os{};
  int64_t in_offset = 0, out_offset = 0;  // elements
  int n = 0;
  DType idt = DType::F32, odt = DType::F32;
  int in_index = 0, out_index = 0;  // which layer input / output
  bool tiled = false;               // a transpose (same dtype, or fp16 <-> fp32): the tiled kernel
  TiledCopy t{};
  // 16 bytes per thread where both views run in whole 16-byte vectors (a channel slice of a
  // channels-last concat buffer: the element-wise kernel moves 2 bytes per thread and spends its time
  // on index arithmetic); the pointers' alignment is checked at launch.
  bool vec = false;
  Strided vis{}, vos{};
  int vn = 0;

  // Once the views are final (at layer set-up, not per launch).
  void choose_kernel() {
    const bool f16_f32 = (idt == DType::F16 && odt == DType::F32) || (idt == DType::F32 && odt == DType::F16);
    tiled = (idt == odt || f16_f32) && make_tiled(is, os, &t);
    const int lanes = 16 / static_cast<int>(dtype_size(idt));
    vec = !tiled && idt == odt && lanes > 1 && n % lanes == 0 && in_offset % lanes == 0 && out_offset % lanes == 0 &&
          vector_view(is, lanes, &vis) && vector_view(os, lanes, &vos);
    vn = vec ? n / lanes : 0;
  }

  void launch(const LayerIO& io, cudaStream_t stream) const {
    if (n == 0) return;
    const char* src = static_cast<const char*>(io.in[in_index]) + in_offset * static_cast<int64_t>(dtype_size(idt));
    char* dst = static_cast<char*>(io.out[out_index]) + out_offset * static_cast<int64_t>(dtype_size(odt));
    constexpr int kThreads = 256;
    const unsigned blocks = blocks_for(n, kThreads);
    if (tiled) {
      if (idt == DType::F16 && odt == DType::F32) {
        launch_tiled<__half, float>(src, dst, t, stream);
      } else if (idt == DType::F32 && odt == DType::F16) {
        launch_tiled<float, __half>(src, dst, t, stream);
      } else {
        switch (dtype_size(idt)) {
          case 1: launch_tiled<uint8_t>(src, dst, t, stream); break;
          case 2: launch_tiled<uint16_t>(src, dst, t, stream); break;
          case 4: launch_tiled<uint32_t>(src, dst, t, stream); break;
          default: launch_tiled<uint64_t>(src, dst, t, stream); break;
        }
      }
    } else if (vec && reinterpret_cast<uintptr_t>(src) % 16 == 0 && reinterpret_cast<uintptr_t>(dst) % 16 == 0) {
      copy_kernel<<<blocks_for(vn, kThreads), kThreads, 0, stream>>>(reinterpret_cast<const uint4*>(src), vis,
                                                                    reinterpret_cast<uint4*>(dst), vos, vn);
    } else if (idt != odt) {
      convert_kernel<<<blocks, kThreads, 0, stream>>>(src, static_cast<int>(idt), is, dst, static_cast<int>(odt), os, n);
    } else {
      switch (dtype_size(idt)) {
        case 1: copy_kernel<<<blocks, kThreads, 0, stream>>>(reinterpret_cast<const uint8_t*>(src), is, reinterpret_cast<uint8_t*>(dst), os, n); break;
        case 2: copy_kernel<<<blocks, kThreads, 0, stream>>>(reinterpret_cast<const uint16_t*>(src), is, reinterpret_cast<uint16_t*>(dst), os, n); break;
        case 4: copy_kernel<<<blocks, kThreads, 0, stream>>>(reinterpret_cast<const uint32_t*>(src), is, reinterpret_cast<uint32_t*>(dst), os, n); break;
        default: copy_kernel<<<blocks, kThreads, 0, stream>>>(reinterpret_cast<const uint64_t*>(src), is, reinterpret_cast<uint64_t*>(dst), os, n); break;
      }
    }
    KLAUNCH("copy");
  }
};

// Same logical shape on both sides (may be reordered and coalesced together).
CopyOp same_shape_copy(const Shape& shape, const std::vector<int64_t>& in_strides, const std::vector<int64_t>& out_strides,
                       DType idt, DType odt) {
  CopyOp c;
  c.is = make_strided(shape, in_strides);
  c.os = make_strided(shape, out_strides);
  c.n = static_cast<int>(shape_numel(shape));
  c.idt = idt;
  c.odt = odt;
  optimize_views({&c.os, &c.is});
  return c;
}

// The strides that view `from` (with `strides`) in the shape `to` without a copy, when they exist
// (numpy's no-copy reshape): each run of `from` dims that merges into, or splits into, a run of `to`
// dims must be contiguous within itself. Then a Reshape's copy becomes a same-shape copy, which the
// tiled kernel takes when it is a transpose (a channels-last conv output reshaped for a MatMul).
bool reshape_strides(const Shape& from, const std::vector<int64_t>& strides, const Shape& to, std::vector<int64_t>* out) {
  std::vector<int64_t> od, os;  // the old dims without the 1s
  for (size_t d = 0; d < from.size(); ++d)
    if (from[d] != 1) {
      od.push_back(from[d]);
      os.push_back(strides[d]);
    }
  std::vector<int64_t> nd;
  std::vector<size_t> where;  // index in `to` of each non-1 new dim
  for (size_t d = 0; d < to.size(); ++d)
    if (to[d] != 1) {
      nd.push_back(to[d]);
      where.push_back(d);
    }
  if (shape_numel(from) == 0 || shape_numel(from) != shape_numel(to)) return false;
  std::vector<int64_t> ns(nd.size(), 0);
  size_t oi = 0, oj = 1, ni = 0, nj = 1;
  while (ni < nd.size() && oi < od.size()) {
    int64_t np = nd[ni], op = od[oi];
    while (np != op) {
      if (np < op) {
        if (nj >= nd.size()) return false;
        np *= nd[nj++];
      } else {
        if (oj >= od.size()) return false;
        op *= od[oj++];
      }
    }
    for (size_t k = oi; k + 1 < oj; ++k)
      if (os[k] != od[k + 1] * os[k + 1]) return false;
    ns[nj - 1] = os[oj - 1];
    for (size_t k = nj - 1; k > ni; --k) ns[k - 1] = ns[k] * nd[k];
    ni = nj++;
    oi = oj++;
  }
  out->assign(to.size(), 0);  // size-1 dims: any stride
  for (size_t k = 0; k < nd.size(); ++k) (*out)[where[k]] = ns[k];
  return true;
}

std::vector<int64_t> ints_or(const Attributes& a, const char* k) { return a.ints(k, std::vector<int64_t>{}); }

class CopyLayer : public Layer {
 public:
  explicit CopyLayer(const LayerSpec& s) : Layer(s) {
    const std::string& op = s.op;
    const TensorMeta& x = *s.in.at(0);
    const auto skip_in = ints_or(s.attrs, "kestrel_skip_in");
    const auto skip_out = ints_or(s.attrs, "kestrel_skip_out");
    auto skipped = [](const std::vector<int64_t>& v, size_t i) { return std::find(v.begin(), v.end(), int64_t(i)) != v.end(); };
    if (op == "Transpose") {
      const TensorMeta& y = *s.out[0];
      std::vector<int64_t> perm = s.attrs.ints("perm", std::vector<int64_t>{});
      if (perm.empty())
        for (int64_t i = x.rank() - 1; i >= 0; --i) perm.push_back(i);
      std::vector<int64_t> st;
      for (int64_t p : perm) st.push_back(x.strides[p < 0 ? p + x.rank() : p]);
      ops_.push_back(same_shape_copy(y.shape, st, y.strides, x.dtype, y.dtype));
    } else if (op == "Slice") {
      const TensorMeta& y = *s.out[0];
      Node n;
      n.name = s.name;
      n.op = op;
      SliceParams p = resolve_slice(x.shape, s.attrs.ints("starts"), s.attrs.ints("ends"), ints_or(s.attrs, "axes"),
                                    ints_or(s.attrs, "steps"), n);
      std::vector<int64_t> st(x.rank());
      int64_t off = 0;
      for (int d = 0; d < x.rank(); ++d) {
        st[d] = x.strides[d] * p.steps[d];
        off += p.starts[d] * x.strides[d];
      }
      if (!skipped(skip_out, 0)) {
        CopyOp c = same_shape_copy(y.shape, st, y.strides, x.dtype, y.dtype);
        c.in_offset = off;
        ops_.push_back(c);
      }
    } else if (op == "Split") {
      const int64_t axis = s.attrs.i("axis", 0);
      int64_t start = 0;
      for (size_t k = 0; k < s.out.size(); ++k) {
        const TensorMeta* y = s.out[k];
        if (!y) continue;
        if (!skipped(skip_out, k)) {
          CopyOp c = same_shape_copy(y->shape, x.strides, y->strides, x.dtype, y->dtype);
          c.in_offset = start * x.strides[axis];
          c.out_index = static_cast<int>(k);
          ops_.push_back(c);
        }
        start += y->shape[axis];
      }
    } else if (op == "Concat") {
      const TensorMeta& y = *s.out[0];
      const int64_t axis = normalize_axis(s.attrs.i("axis"), y.rank(), Node{s.name, op, {}, {}, {}});
      int64_t start = 0;
      for (size_t k = 0; k < s.in.size(); ++k) {
        const TensorMeta& xi = *s.in[k];
        if (!skipped(skip_in, k)) {
          CopyOp c = same_shape_copy(xi.shape, xi.strides, y.strides, xi.dtype, y.dtype);
          c.out_offset = start * y.strides[axis];
          c.in_index = static_cast<int>(k);
          ops_.push_back(c);
        }
        start += xi.shape[axis];
      }
    } else if (op == "Expand") {
      const TensorMeta& y = *s.out[0];
      CopyOp c;
      c.is = broadcast_strided(x, y.shape);
      c.os = make_strided(y);
      c.n = static_cast<int>(y.numel());
      c.idt = x.dtype;
      c.odt = y.dtype;
      optimize_views({&c.os, &c.is});
      ops_.push_back(c);
    } else {
      // Identity, Reshape, Flatten, Squeeze, Unsqueeze, kestrel.Convert: element i to element i, each
      // side decomposed by its own shape.
      const TensorMeta& y = *s.out[0];
      KESTREL_CHECK(x.numel() == y.numel(), "internal: ", op, " changes the element count");
      std::vector<int64_t> xs_as_y;
      if (x.shape == y.shape) {
        ops_.push_back(same_shape_copy(y.shape, x.strides, y.strides, x.dtype, y.dtype));
      } else if (reshape_strides(x.shape, x.strides, y.shape, &xs_as_y)) {
        ops_.push_back(same_shape_copy(y.shape, xs_as_y, y.strides, x.dtype, y.dtype));
      } else {
        CopyOp c;
        c.is = make_strided(x);
        c.os = make_strided(y);
        c.n = static_cast<int>(y.numel());
        c.idt = x.dtype;
        c.odt = y.dtype;
        coalesce_dims({&c.is});
        coalesce_dims({&c.os});
        ops_.push_back(c);
      }
    }
    for (CopyOp& c : ops_) c.choose_kernel();
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    for (const CopyOp& c : ops_) c.launch(io, stream);
  }

 private:
  std::vector<CopyOp> ops_;
};

// Tile: output coordinate c reads input coordinate c mod extent.
__global__ void tile_kernel(const void* in, int idt, Strided is, void* out, int odt, Strided os, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int rem = i, in_off = 0;
  for (int d = os.rank - 1; d >= 0; --d) {
    const int c = rem % os.shape[d];
    rem /= os.shape[d];
    in_off += (c % is.shape[d]) * is.stride[d];
  }
  store_from_float(out, odt, strided_offset(os, i), load_as_float(in, idt, in_off));
}

// Pad: output coordinate minus the begin pad; outside the input, constant / edge / reflect.
struct PadArgs {
  Strided is, os;
  int pads[kMaxRank];
  int mode;  // 0 constant, 1 edge, 2 reflect
  float value;
  int n, idt, odt;
};
__global__ void pad_kernel(const void* in, void* out, const __grid_constant__ PadArgs a) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= a.n) return;
  int rem = i, in_off = 0;
  bool inside = true;
  for (int d = a.os.rank - 1; d >= 0; --d) {
    int c = rem % a.os.shape[d] - a.pads[d];
    rem /= a.os.shape[d];
    const int e = a.is.shape[d];
    if (c < 0 || c >= e) {
      if (a.mode == 0) inside = false;
      else if (a.mode == 1) c = c < 0 ? 0 : e - 1;
      else c = c < 0 ? -c : 2 * (e - 1) - c;
    }
    in_off += c * a.is.stride[d];
  }
  const float v = inside ? load_as_float(in, a.idt, in_off) : a.value;
  store_from_float(out, a.odt, strided_offset(a.os, i), v);
}

// Gather along one axis with int64/int32 indices (a dense input, any output view).
struct GatherArgs {
  Strided os;
  int outer, count, extent, inner, n, idx_is_64, idt, odt;
};
__global__ void gather_kernel(const void* in, const void* idx, void* out, const __grid_constant__ GatherArgs a) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= a.n) return;
  const int r = i % a.inner, j = (i / a.inner) % a.count, o = i / (a.inner * a.count);
  long long k = a.idx_is_64 ? static_cast<const long long*>(idx)[j] : static_cast<const int*>(idx)[j];
  if (k < 0) k += a.extent;
  k = k < 0 ? 0 : (k >= a.extent ? a.extent - 1 : k);  // indices were range-checked at build when constant
  const float v = load_as_float(in, a.idt, (static_cast<long long>(o) * a.extent + k) * a.inner + r);
  store_from_float(out, a.odt, strided_offset(a.os, i), v);
}

class TileLayer : public Layer {
 public:
  explicit TileLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    is_ = make_strided(x);
    os_ = make_strided(y);
    n_ = static_cast<int>(y.numel());
    idt_ = static_cast<int>(x.dtype);
    odt_ = static_cast<int>(y.dtype);
  }
  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!n_) return;
    tile_kernel<<<blocks_for(n_, 256), 256, 0, stream>>>(io.in[0], idt_, is_, io.out[0], odt_, os_, n_);
    KLAUNCH("tile");
  }

 private:
  Strided is_, os_;
  int n_, idt_, odt_;
};

class PadLayer : public Layer {
 public:
  explicit PadLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(s.attrs.has("pads"), "Pad with non-constant pads is not supported on the GPU");
    const auto pads = s.attrs.ints("pads");
    a_ = {};
    a_.is = make_strided(x);
    a_.os = make_strided(y);
    for (int d = 0; d < x.rank(); ++d) a_.pads[d] = static_cast<int>(pads[d]);
    const std::string mode = s.attrs.s("mode", "constant");
    KESTREL_CHECK(mode == "constant" || mode == "edge" || mode == "reflect", "Pad mode '", mode, "' is not supported");
    a_.mode = mode == "constant" ? 0 : mode == "edge" ? 1 : 2;
    a_.value = s.attrs.f("value", 0.f);
    a_.n = static_cast<int>(y.numel());
    a_.idt = static_cast<int>(x.dtype);
    a_.odt = static_cast<int>(y.dtype);
  }
  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!a_.n) return;
    pad_kernel<<<blocks_for(a_.n, 256), 256, 0, stream>>>(io.in[0], io.out[0], a_);
    KLAUNCH("pad");
  }

 private:
  PadArgs a_;
};

class GatherLayer : public Layer {
 public:
  explicit GatherLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& idx = *s.in[1];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(x.dense_row_major(), "internal: Gather needs a dense input");
    KESTREL_CHECK(idx.dtype == DType::I64 || idx.dtype == DType::I32, "Gather indices must be int32/int64");
    KESTREL_CHECK(idx.dense_row_major(), "internal: Gather needs dense indices");
    const int64_t axis = normalize_axis(s.attrs.i("axis", 0), x.rank(), Node{s.name, s.op, {}, {}, {}});
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= x.shape[d];
    for (int64_t d = axis + 1; d < x.rank(); ++d) inner *= x.shape[d];
    a_ = {};
    a_.os = make_strided(y);
    a_.outer = static_cast<int>(outer);
    a_.count = static_cast<int>(idx.numel());
    a_.extent = static_cast<int>(x.shape[axis]);
    a_.inner = static_cast<int>(inner);
    a_.n = static_cast<int>(y.numel());
    a_.idx_is_64 = idx.dtype == DType::I64;
    a_.idt = static_cast<int>(x.dtype);
    a_.odt = static_cast<int>(y.dtype);
  }
  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!a_.n) return;
    gather_kernel<<<blocks_for(a_.n, 256), 256, 0, stream>>>(io.in[0], io.in[1], io.out[0], a_);
    KLAUNCH("gather");
  }

 private:
  GatherArgs a_;
};

}  // namespace

std::unique_ptr<Layer> make_copy(const LayerSpec& s) { return std::make_unique<CopyLayer>(s); }
std::unique_ptr<Layer> make_tile(const LayerSpec& s) { return std::make_unique<TileLayer>(s); }
std::unique_ptr<Layer> make_pad(const LayerSpec& s) { return std::make_unique<PadLayer>(s); }
std::unique_ptr<Layer> make_gather(const LayerSpec& s) { return std::make_unique<GatherLayer>(s); }

}  // namespace kestrel::cuda
