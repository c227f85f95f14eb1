// ReduceMean / ReduceMax / ReduceMin / ReduceSum over any set of axes, any input strides: one thread
// per output element walks the reduced sub-box.
#include <cfloat>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"
#include "ir/op_registry.h"

namespace kestrel::cuda {

namespace {

enum RedOp : int { kRedSum, kRedMean, kRedMax, kRedMin };

struct ReduceArgs {
  Strided kept;     // input strides over the kept dims (reduced dims extent 1)
  Strided reduced;  // input strides over the reduced dims (kept dims extent 1)
  Strided out;      // output view over the kept index space
  int n_out, n_red, op, idt, odt;
};

__global__ void reduce_kernel(const void* x, void* y, const __grid_constant__ ReduceArgs a) {
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= a.n_out) return;
  const int base = strided_offset(a.kept, o);
  float acc = a.op == kRedMax ? -FLT_MAX : (a.op == kRedMin ? FLT_MAX : 0.f);
  for (int j = 0; j < a.n_red; ++j) {
    const float v = load_as_float(x, a.idt, base + strided_offset(a.reduced, j));
    acc = a.op == kRedMax ? fmaxf(acc, v) : (a.op == kRedMin ? fminf(acc, v) : acc + v);
  }
  if (a.op == kRedMean && a.n_red) acc /= static_cast<float>(a.n_red);
  store_from_float(y, a.odt, strided_offset(a.out, o), acc);
}

class ReduceLayer : public Layer {
 public:
  explicit ReduceLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    const size_t r = x.shape.size();
    std::vector<int64_t> axes = s.attrs.ints("axes", std::vector<int64_t>{});
    std::vector<bool> red(r, axes.empty());
    if (axes.empty() && s.attrs.i("noop_with_empty_axes", 0)) red.assign(r, false);
    Node n{s.name, s.op, {}, {}, {}};
    for (int64_t ax : axes) red[normalize_axis(ax, static_cast<int64_t>(r), n)] = true;
    Shape kept_shape(r), red_shape(r);
    for (size_t d = 0; d < r; ++d) {
      kept_shape[d] = red[d] ? 1 : x.shape[d];
      red_shape[d] = red[d] ? x.shape[d] : 1;
    }
    a_ = {};
    a_.kept = make_strided(kept_shape, x.strides);
    a_.reduced = make_strided(red_shape, x.strides);
    // The output's elements in kept order: its strides with the reduced dims as extent-1 dims.
    std::vector<int64_t> ost(r, 0);
    size_t j = 0;
    const bool keep = s.attrs.i("keepdims", 1) != 0 || y.rank() == static_cast<int>(r);
    for (size_t d = 0; d < r; ++d) {
      if (!red[d]) ost[d] = y.strides[keep ? d : j++];
      else if (keep) ost[d] = y.strides[d];
    }
    a_.out = make_strided(kept_shape, ost);
    a_.n_out = static_cast<int>(shape_numel(kept_shape));
    a_.n_red = static_cast<int>(shape_numel(red_shape));
    a_.op = s.op == "ReduceSum" ? kRedSum : s.op == "ReduceMean" ? kRedMean : s.op == "ReduceMax" ? kRedMax : kRedMin;
    a_.idt = static_cast<int>(x.dtype);
    a_.odt = static_cast<int>(y.dtype);
  }
  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!a_.n_out) return;
    reduce_kernel<<<blocks_for(a_.n_out, 128), 128, 0, stream>>>(io.in[0], io.out[0], a_);
    KLAUNCH("reduce");
  }

 private:
  ReduceArgs a_;
};

}  // namespace

std::unique_ptr<Layer> make_reduce(const LayerSpec& s) { return std::make_unique<ReduceLayer>(s); }

}  // namespace kestrel::cuda
