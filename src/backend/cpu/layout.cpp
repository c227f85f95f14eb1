// Data-movement ops, dtype-agnostic (byte copies): Concat, Split, Slice, Transpose, Gather, Expand,
// Tile, Pad and the shape-only ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity) that copy as is.
#include <algorithm>
#include <cstring>

#include "backend/cpu/broadcast.h"
#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"
#include "ir/op_registry.h"

namespace kestrel::cpu {

namespace {
const std::byte* bytes(const HostTensor& t) { return static_cast<const std::byte*>(t.raw()); }
std::byte* bytes(HostTensor& t) { return static_cast<std::byte*>(t.raw()); }

// outer x (extent * inner) blocks around an axis.
std::pair<int64_t, int64_t> outer_inner(const Shape& s, int64_t axis) {
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= s[i];
  for (size_t i = static_cast<size_t>(axis) + 1; i < s.size(); ++i) inner *= s[i];
  return {outer, inner};
}
}  // namespace

void k_copy(const Node&, Inputs in, Outputs out) {
  if (in[0]->nbytes()) std::memcpy(out[0].raw(), in[0]->raw(), in[0]->nbytes());
}

void k_concat(const Node& n, Inputs in, Outputs out) {
  const Shape& ys = out[0].shape();
  const int64_t axis = normalize_axis(n.attrs.i("axis"), static_cast<int64_t>(ys.size()), n);
  const size_t es = dtype_size(out[0].dtype());
  auto [outer, inner] = outer_inner(ys, axis);
  const int64_t yrow = ys[axis] * inner * es;
  int64_t offset = 0;
  for (const HostTensor* x : in) {
    const int64_t xrow = x->dim(axis) * inner * es;
    for (int64_t o = 0; o < outer; ++o) std::memcpy(bytes(out[0]) + o * yrow + offset, bytes(*x) + o * xrow, xrow);
    offset += xrow;
  }
}

void k_split(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const int64_t axis = normalize_axis(n.attrs.i("axis", 0), static_cast<int64_t>(x.rank()), n);
  const size_t es = dtype_size(x.dtype());
  auto [outer, inner] = outer_inner(x.shape(), axis);
  const int64_t xrow = x.dim(axis) * inner * es;
  int64_t offset = 0;
  for (HostTensor& y : out) {
    if (y.empty()) continue;
    const int64_t yrow = y.dim(axis) * inner * es;
    for (int64_t o = 0; o < outer; ++o) std::memcpy(bytes(y) + o * yrow, bytes(x) + o * xrow + offset, yrow);
    offset += yrow;
  }
}

void k_slice(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  std::vector<int64_t> starts, ends, axes, steps;
  if (n.attrs.has("starts")) {
    starts = n.attrs.ints("starts");
    ends = n.attrs.ints("ends");
    axes = n.attrs.ints("axes", std::vector<int64_t>{});
    steps = n.attrs.ints("steps", std::vector<int64_t>{});
  } else {
    starts = in[1]->to_i64();
    ends = in[2]->to_i64();
    if (in.size() > 3 && in[3]) axes = in[3]->to_i64();
    if (in.size() > 4 && in[4]) steps = in[4]->to_i64();
  }
  SliceParams p = resolve_slice(x.shape(), starts, ends, axes, steps, n);
  const size_t es = dtype_size(x.dtype());
  const size_t r = x.rank();
  std::vector<int64_t> xstride(r, 1);
  for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) xstride[d] = xstride[d + 1] * x.dim(d + 1);
  const int64_t total = out[0].numel();
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < total; ++o) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += (p.starts[d] + idx[d] * p.steps[d]) * xstride[d];
    std::memcpy(bytes(out[0]) + o * es, bytes(x) + off * es, es);
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      if (++idx[d] < p.out[d]) break;
      idx[d] = 0;
    }
  }
}

void k_transpose(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const size_t r = x.rank();
  std::vector<int64_t> perm = n.attrs.ints("perm", std::vector<int64_t>{});
  if (perm.empty())
    for (int64_t i = static_cast<int64_t>(r) - 1; i >= 0; --i) perm.push_back(i);
  std::vector<int64_t> xstride(r, 1);
  for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) xstride[d] = xstride[d + 1] * x.dim(d + 1);
  std::vector<int64_t> st(r);  // input stride for each output dim
  for (size_t d = 0; d < r; ++d) st[d] = xstride[perm[d] < 0 ? perm[d] + r : perm[d]];
  const size_t es = dtype_size(x.dtype());
  const Shape& ys = out[0].shape();
  std::array<std::vector<int64_t>, 1> strides = {st};
  if (es == 4) {
    const uint32_t* px = x.data<uint32_t>();
    uint32_t* py = out[0].data<uint32_t>();
    for_each_broadcast<1>(ys, strides, [&](int64_t o, const std::array<int64_t, 1>& off) { py[o] = px[off[0]]; });
  } else {
    for_each_broadcast<1>(ys, strides, [&](int64_t o, const std::array<int64_t, 1>& off) {
      std::memcpy(bytes(out[0]) + o * es, bytes(x) + off[0] * es, es);
    });
  }
}

void k_gather(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const auto idx = in[1]->to_i64();
  const int64_t axis = normalize_axis(n.attrs.i("axis", 0), static_cast<int64_t>(x.rank()), n);
  const size_t es = dtype_size(x.dtype());
  auto [outer, inner] = outer_inner(x.shape(), axis);
  const int64_t extent = x.dim(axis);
  const int64_t block = inner * es;
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < idx.size(); ++k) {
      int64_t i = idx[k] < 0 ? idx[k] + extent : idx[k];
      KESTREL_CHECK(i >= 0 && i < extent, "Gather node '", n.name, "': index ", idx[k], " out of range [0, ", extent, ")");
      std::memcpy(bytes(out[0]) + (o * idx.size() + k) * block, bytes(x) + (o * extent + i) * block, block);
    }
}

void k_expand(const Node&, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const size_t es = dtype_size(x.dtype());
  std::array<std::vector<int64_t>, 1> st = {broadcast_strides(x.shape(), out[0].shape())};
  for_each_broadcast<1>(out[0].shape(), st, [&](int64_t o, const std::array<int64_t, 1>& off) {
    std::memcpy(bytes(out[0]) + o * es, bytes(x) + off[0] * es, es);
  });
}

void k_tile(const Node&, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  const size_t es = dtype_size(x.dtype()), r = x.rank();
  const Shape& ys = out[0].shape();
  std::vector<int64_t> xstride(r, 1);
  for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) xstride[d] = xstride[d + 1] * x.dim(d + 1);
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < out[0].numel(); ++o) {
    int64_t off = 0;
    for (size_t d = 0; d < r; ++d) off += (idx[d] % x.dim(d)) * xstride[d];
    std::memcpy(bytes(out[0]) + o * es, bytes(x) + off * es, es);
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      if (++idx[d] < ys[d]) break;
      idx[d] = 0;
    }
  }
}

void k_pad(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  KESTREL_CHECK(x.dtype() == DType::F32, "Pad node '", n.name, "': float32 only");
  const std::string mode = n.attrs.s("mode", "constant");
  std::vector<int64_t> pads = n.attrs.has("pads") ? n.attrs.ints("pads") : in[1]->to_i64();
  float value = n.attrs.f("value", 0.f);
  if (in.size() > 2 && in[2]) value = in[2]->to_f32().at(0);
  const size_t r = x.rank();
  const Shape& ys = out[0].shape();
  std::vector<int64_t> xstride(r, 1);
  for (int64_t d = static_cast<int64_t>(r) - 2; d >= 0; --d) xstride[d] = xstride[d + 1] * x.dim(d + 1);
  std::vector<int64_t> idx(r, 0);
  float* py = out[0].data<float>();
  for (int64_t o = 0; o < out[0].numel(); ++o) {
    int64_t off = 0;
    bool inside = true;
    for (size_t d = 0; d < r; ++d) {
      int64_t i = idx[d] - pads[d];
      const int64_t e = x.dim(d);
      if (i < 0 || i >= e) {
        if (mode == "constant") {
          inside = false;
          break;
        } else if (mode == "edge") {
          i = i < 0 ? 0 : e - 1;
        } else if (mode == "reflect") {
          i = i < 0 ? -i : 2 * (e - 1) - i;
        } else {
          fail("Pad node '", n.name, "': mode '", mode, "' not supported");
        }
      }
      off += i * xstride[d];
    }
    py[o] = inside ? x.data<float>()[off] : value;
    for (int64_t d = static_cast<int64_t>(r) - 1; d >= 0; --d) {
      if (++idx[d] < ys[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace kestrel::cpu
