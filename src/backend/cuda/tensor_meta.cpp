// TensorMeta queries and Strided construction (host side).
#include <limits>
#include <utility>

#include "backend/cuda/layer.h"
#include "backend/cuda/strided.h"

namespace kestrel::cuda {

int64_t TensorMeta::span() const {
  if (numel() == 0) return 0;
  int64_t s = 1;
  for (size_t d = 0; d < shape.size(); ++d) s += (shape[d] - 1) * strides[d];
  return s;
}

bool TensorMeta::dense_row_major() const {
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (shape[d] != 1 && strides[d] != s) return false;
    s *= shape[d];
  }
  return true;
}

bool TensorMeta::channels_last_ld(int64_t* ld) const {
  if (shape.size() != 4) return false;
  const int64_t C = shape[1], H = shape[2], W = shape[3];
  const int64_t l = strides[3];
  const bool ok = (C == 1 || strides[1] == 1) && l >= C && (H == 1 || strides[2] == W * l) &&
                  (shape[0] == 1 || strides[0] == H * W * l);
  if (ok && ld) *ld = l;
  return ok;
}

std::vector<int64_t> row_major_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t d = static_cast<int64_t>(s.size()) - 2; d >= 0; --d) st[d] = st[d + 1] * s[d + 1];
  return st;
}

std::vector<int64_t> channels_last_strides(const Shape& s) {
  if (s.size() != 4) return row_major_strides(s);
  const int64_t C = s[1], H = s[2], W = s[3];
  return {H * W * C, 1, W * C, C};
}

Strided make_strided(const Shape& shape, const std::vector<int64_t>& strides) {
  KESTREL_CHECK(shape.size() <= static_cast<size_t>(kMaxRank), "tensors of rank ", shape.size(),
                " are not supported on the GPU (at most ", kMaxRank, ")");
  KESTREL_CHECK(strides.size() == shape.size(), "internal: strides do not match shape ", shape_str(shape));
  Strided s{};
  s.rank = static_cast<int>(shape.size());
  int64_t span = 1, n = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    s.shape[d] = static_cast<int>(shape[d]);
    s.stride[d] = static_cast<int>(strides[d]);
    span += (shape[d] - 1) * strides[d];
    n *= shape[d];
  }
  KESTREL_CHECK(span < std::numeric_limits<int>::max() && n < std::numeric_limits<int>::max(), "tensor ",
                shape_str(shape), " has 2^31 elements or more; use a smaller batch");
  if (s.rank == 0) {  // scalars as [1]
    s.rank = 1;
    s.shape[0] = 1;
    s.stride[0] = 0;
  }
  return s;
}

Strided broadcast_strided(const TensorMeta& in, const Shape& out) {
  const size_t r = out.size(), ri = in.shape.size();
  KESTREL_CHECK(ri <= r, "internal: broadcast to a lower rank");
  std::vector<int64_t> st(r, 0);
  for (size_t d = 0; d < ri; ++d) {
    const size_t od = r - ri + d;
    st[od] = in.shape[d] == 1 ? 0 : in.strides[d];
  }
  return make_strided(out, st);
}

void coalesce_dims(std::vector<Strided*> views) {
  Strided& ref = *views[0];
  int r = ref.rank;
  // Drop extent-1 dims (any stride) first.
  int w = 0;
  for (int d = 0; d < r; ++d) {
    if (ref.shape[d] == 1 && r > 1) continue;
    for (Strided* v : views) {
      v->shape[w] = v->shape[d];
      v->stride[w] = v->stride[d];
    }
    ++w;
  }
  if (w == 0) {
    for (Strided* v : views) v->shape[0] = 1, v->stride[0] = 0;
    w = 1;
  }
  r = w;
  // Merge d into d+1 when every view has stride[d] == stride[d+1] * shape[d+1].
  int out = 0;
  for (int d = 0; d < r; ++d) {
    if (out > 0) {
      bool mergeable = true;
      for (Strided* v : views)
        if (v->stride[out - 1] != static_cast<int64_t>(v->stride[d]) * v->shape[d]) mergeable = false;
      if (mergeable) {
        for (Strided* v : views) {
          v->shape[out - 1] *= v->shape[d];
          v->stride[out - 1] = v->stride[d];
        }
        continue;
      }
    }
    for (Strided* v : views) {
      v->shape[out] = v->shape[d];
      v->stride[out] = v->stride[d];
    }
    ++out;
  }
  for (Strided* v : views) v->rank = out;
}

}  // namespace kestrel::cuda

namespace kestrel::cuda {
int64_t pixel_stride(const TensorMeta& t, const LayerSpec& s) {
  int64_t ld = 0;
  KESTREL_CHECK(t.channels_last_ld(&ld), "internal: ", s.op, " node '", s.name, "' needs a channels-last tensor, got strides ",
                shape_str(t.strides));
  return ld;
}

bool vector_view(const Strided& v, int lanes, Strided* out) {
  if (v.rank < 1 || lanes < 1) return false;
  const int last = v.rank - 1;
  if (v.stride[last] != 1 || v.shape[last] % lanes != 0) return false;
  for (int d = 0; d < last; ++d)
    if (v.stride[d] % lanes != 0) return false;
  *out = v;
  out->shape[last] = v.shape[last] / lanes;
  for (int d = 0; d < last; ++d) out->stride[d] = v.stride[d] / lanes;
  return true;
}

void optimize_views(std::vector<Strided*> views) {
  Strided& ref = *views[0];
  const int r = ref.rank;
  int order[kMaxRank];
  for (int d = 0; d < r; ++d) order[d] = d;
  // Stable insertion sort by the output's stride, largest first.
  for (int i = 1; i < r; ++i)
    for (int j = i; j > 0 && ref.stride[order[j - 1]] < ref.stride[order[j]]; --j) std::swap(order[j - 1], order[j]);
  for (Strided* v : views) {
    Strided c = *v;
    for (int d = 0; d < r; ++d) {
      v->shape[d] = c.shape[order[d]];
      v->stride[d] = c.stride[order[d]];
    }
  }
  coalesce_dims(views);
}
}  // namespace kestrel::cuda
