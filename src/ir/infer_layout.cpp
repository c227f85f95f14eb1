#include <algorithm>
#include <cmath>

#include "ir/infer_fns.h"

namespace kestrel {

void infer_concat(InferContext& c) {
  Shape out = c.shape(0);
  const int64_t axis = normalize_axis(c.attrs().i("axis"), static_cast<int64_t>(out.size()), c.node());
  for (size_t i = 1; i < c.num_inputs(); ++i) {
    const Shape& s = c.shape(i);
    if (s.size() != out.size()) c.error("inputs have different ranks");
    for (size_t d = 0; d < s.size(); ++d)
      if (static_cast<int64_t>(d) != axis && s[d] != out[d])
        c.error("input " + std::to_string(i) + " shape " + shape_str(s) + " does not match " + shape_str(c.shape(0)));
    out[axis] += s[axis];
  }
  c.set_output(0, c.dtype(0), out);
}

// Split sizes: attribute (opset < 13 or canonical), constant input (13+), or equal parts.
static std::vector<int64_t> split_sizes(InferContext& c, int64_t dim) {
  std::vector<int64_t> sizes = axes_of(c, 1, "split");
  const int64_t n = static_cast<int64_t>(c.num_outputs());
  if (sizes.empty()) {
    const int64_t parts = c.attrs().i("num_outputs", n);
    if (parts <= 0) c.error("num_outputs must be positive");
    const int64_t chunk = (dim + parts - 1) / parts;  // opset 18: last chunk may be smaller
    for (int64_t i = 0; i < parts; ++i) sizes.push_back(std::min(chunk, dim - i * chunk));
  }
  int64_t total = 0;
  for (int64_t s : sizes) total = dim_add(c, total, s);
  if (total != dim || static_cast<int64_t>(sizes.size()) != n)
    c.error("split sizes do not add up to dimension " + std::to_string(dim));
  return sizes;
}

void infer_split(InferContext& c) {
  const Shape& x = c.shape(0);
  const int64_t axis = normalize_axis(c.attrs().i("axis", 0), static_cast<int64_t>(x.size()), c.node());
  auto sizes = split_sizes(c, x[axis]);
  for (size_t i = 0; i < sizes.size(); ++i) {
    Shape s = x;
    s[axis] = sizes[i];
    c.set_output(i, c.dtype(0), s);
  }
}

void infer_slice(InferContext& c) {
  std::vector<int64_t> starts, ends, axes, steps;
  if (c.attrs().has("starts")) {  // opset < 10, or the importer's canonical form
    starts = c.attrs().ints("starts");
    ends = c.attrs().ints("ends");
    axes = c.attrs().ints("axes", std::vector<int64_t>{});
    steps = c.attrs().ints("steps", std::vector<int64_t>{});
  } else {
    starts = c.constant(1).to_i64();
    ends = c.constant(2).to_i64();
    if (c.has_input(3)) axes = c.constant(3).to_i64();
    if (c.has_input(4)) steps = c.constant(4).to_i64();
  }
  c.set_output(0, c.dtype(0), resolve_slice(c.shape(0), starts, ends, axes, steps, c.node()).out);
}

void infer_reshape(InferContext& c) {
  const Shape& x = c.shape(0);
  std::vector<int64_t> target = c.attrs().has("shape") ? c.attrs().ints("shape") : c.constant(1).to_i64();
  const bool allowzero = c.attrs().i("allowzero", 0);
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < target.size(); ++i) {
    if (target[i] == 0 && !allowzero) {
      if (i >= x.size()) c.error("0 in shape refers to a missing input dimension");
      target[i] = x[i];
    }
    if (target[i] == -1) {
      if (infer_at >= 0) c.error("more than one -1 in shape");
      infer_at = static_cast<int64_t>(i);
    } else {
      known = dim_mul(c, known, target[i]);
    }
  }
  const int64_t n = shape_numel(x);
  if (infer_at >= 0) {
    if (known == 0 || n % known) c.error("cannot reshape " + shape_str(x) + " to " + shape_str(target));
    target[infer_at] = n / known;
  }
  if (shape_numel(target) != n) c.error("cannot reshape " + shape_str(x) + " to " + shape_str(target));
  c.set_output(0, c.dtype(0), target);
}

void infer_flatten(InferContext& c) {
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  int64_t axis = c.attrs().i("axis", 1);
  if (axis < 0) axis += r;
  if (axis < 0 || axis > r) c.error("axis out of range");
  int64_t a = 1, b = 1;
  for (int64_t i = 0; i < r; ++i) (i < axis ? a : b) *= x[i];
  c.set_output(0, c.dtype(0), {a, b});
}

void infer_transpose(InferContext& c) {
  const Shape& x = c.shape(0);
  std::vector<int64_t> perm = c.attrs().ints("perm", std::vector<int64_t>{});
  if (perm.empty())
    for (int64_t i = static_cast<int64_t>(x.size()) - 1; i >= 0; --i) perm.push_back(i);
  if (perm.size() != x.size()) c.error("perm length does not match rank");
  Shape out;
  std::vector<bool> seen(x.size(), false);
  for (int64_t p : perm) {
    const int64_t a = normalize_axis(p, static_cast<int64_t>(x.size()), c.node());
    if (seen[a]) c.error("perm repeats an axis");
    seen[a] = true;
    out.push_back(x[a]);
  }
  c.set_output(0, c.dtype(0), out);
}

void infer_gather(InferContext& c) {
  const Shape& x = c.shape(0);
  const Shape& idx = c.shape(1);
  const int64_t axis = normalize_axis(c.attrs().i("axis", 0), static_cast<int64_t>(x.size()), c.node());
  Shape out(x.begin(), x.begin() + axis);
  out.insert(out.end(), idx.begin(), idx.end());
  out.insert(out.end(), x.begin() + axis + 1, x.end());
  c.set_output(0, c.dtype(0), out);
}

void infer_shape(InferContext& c) {
  const int64_t r = static_cast<int64_t>(c.shape(0).size());
  int64_t start = c.attrs().i("start", 0), end = c.attrs().i("end", r);
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = std::clamp<int64_t>(start, 0, r);
  end = std::clamp<int64_t>(end, 0, r);
  c.set_output(0, DType::I64, {std::max<int64_t>(0, end - start)});
}

void infer_unsqueeze(InferContext& c) {
  const Shape& x = c.shape(0);
  auto axes = axes_of(c, 1, "axes");
  const int64_t r = static_cast<int64_t>(x.size() + axes.size());
  std::vector<bool> is_new(r, false);
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, r, c.node());
    if (is_new[n]) c.error("repeated axis");
    is_new[n] = true;
  }
  Shape out;
  size_t j = 0;
  for (int64_t i = 0; i < r; ++i) out.push_back(is_new[i] ? 1 : x[j++]);
  c.set_output(0, c.dtype(0), out);
}

void infer_squeeze(InferContext& c) {
  const Shape& x = c.shape(0);
  auto axes = axes_of(c, 1, "axes");
  std::vector<bool> drop(x.size(), false);
  if (axes.empty()) {
    for (size_t i = 0; i < x.size(); ++i) drop[i] = x[i] == 1;
  } else {
    for (int64_t a : axes) {
      const int64_t n = normalize_axis(a, static_cast<int64_t>(x.size()), c.node());
      if (x[n] != 1) c.error("cannot squeeze axis " + std::to_string(a) + " of extent " + std::to_string(x[n]));
      drop[n] = true;
    }
  }
  Shape out;
  for (size_t i = 0; i < x.size(); ++i)
    if (!drop[i]) out.push_back(x[i]);
  c.set_output(0, c.dtype(0), out);
}

void infer_constant(InferContext& c) {
  const HostTensor& t = c.attrs().tensor("value");
  c.set_output(0, t.dtype(), t.shape());
}

void infer_constant_of_shape(InferContext& c) {
  Shape s = c.constant(0).to_i64();
  DType t = c.attrs().has("value") ? c.attrs().tensor("value").dtype() : DType::F32;
  c.set_output(0, t, s);
}

void infer_expand(InferContext& c) {
  Shape target = c.constant(1).to_i64();
  c.set_output(0, c.dtype(0), broadcast_shapes(c.shape(0), target, c.node()));
}

void infer_range(InferContext& c) {
  // start, limit and delta are scalars: an empty (or longer) tensor is the model's error, named.
  for (int i = 0; i < 3; ++i)
    if (c.constant(i).numel() != 1) c.error("start, limit and delta must be one value each");
  const double start = c.constant(0).to_f32()[0], limit = c.constant(1).to_f32()[0], delta = c.constant(2).to_f32()[0];
  if (delta == 0) c.error("delta is 0");
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(std::ceil((limit - start) / delta)));
  c.set_output(0, c.dtype(0), {n});
}

void infer_pad(InferContext& c) {
  const Shape& x = c.shape(0);
  std::vector<int64_t> pads = c.attrs().has("pads") ? c.attrs().ints("pads") : c.constant(1).to_i64();
  if (c.has_input(3)) c.error("the axes input is not supported");
  if (pads.size() != 2 * x.size()) c.error("pads must have 2 x rank entries");
  Shape out = x;
  for (size_t i = 0; i < x.size(); ++i) out[i] = dim_add(c, out[i], dim_add(c, pads[i], pads[i + x.size()]));
  c.set_output(0, c.dtype(0), out);
}

void infer_tile(InferContext& c) {
  const Shape& x = c.shape(0);
  auto reps = c.constant(1).to_i64();
  if (reps.size() != x.size()) c.error("repeats must have rank entries");
  Shape out = x;
  for (size_t i = 0; i < x.size(); ++i) out[i] = dim_mul(c, out[i], reps[i]);
  c.set_output(0, c.dtype(0), out);
}

}  // namespace kestrel
