// ReduceMean / ReduceMax / ReduceMin / ReduceSum over any set of axes.
#include <algorithm>
#include <cfloat>

#include "backend/cpu/broadcast.h"
#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"
#include "ir/op_registry.h"

namespace kestrel::cpu {

void k_reduce(const Node& n, Inputs in, Outputs out) {
  const HostTensor& x = *in[0];
  KESTREL_CHECK(x.dtype() == DType::F32, n.op, " node '", n.name, "': float32 only");
  std::vector<int64_t> axes = n.attrs.has("axes") ? n.attrs.ints("axes")
                              : (in.size() > 1 && in[1]) ? in[1]->to_i64() : std::vector<int64_t>{};
  const size_t r = x.rank();
  std::vector<bool> red(r, axes.empty());
  if (axes.empty() && n.attrs.i("noop_with_empty_axes", 0)) red.assign(r, false);
  for (int64_t a : axes) red[normalize_axis(a, static_cast<int64_t>(r), n)] = true;
  // Output viewed with keepdims: reduced dims have extent 1 and stride 0 into the accumulator.
  Shape kept(r);
  for (size_t d = 0; d < r; ++d) kept[d] = red[d] ? 1 : x.dim(d);
  const int64_t count = x.numel() / std::max<int64_t>(1, shape_numel(kept));
  const bool is_max = n.op == "ReduceMax", is_min = n.op == "ReduceMin";
  std::vector<double> acc(static_cast<size_t>(shape_numel(kept)), is_max ? -DBL_MAX : is_min ? DBL_MAX : 0.0);
  std::array<std::vector<int64_t>, 1> st = {broadcast_strides(kept, x.shape())};
  const float* px = x.data<float>();
  for_each_broadcast<1>(x.shape(), st, [&](int64_t i, const std::array<int64_t, 1>& off) {
    double& a = acc[off[0]];
    a = is_max ? std::max<double>(a, px[i]) : is_min ? std::min<double>(a, px[i]) : a + px[i];
  });
  for (size_t i = 0; i < acc.size(); ++i)
    out[0].data<float>()[i] = static_cast<float>(n.op == "ReduceMean" ? acc[i] / static_cast<double>(count) : acc[i]);
}

}  // namespace kestrel::cpu
