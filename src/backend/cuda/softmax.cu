// Softmax over one axis of a dense row-major tensor (or, for opset < 13 models, over all dims from
// `axis` on: kestrel_legacy_axis). A warp per row when the axis is innermost (attention scores), a
// thread per row otherwise (YOLOv8's DFL: 16 bins with a long inner extent, coalesced across rows).
#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"
#include "ir/op_registry.h"

namespace kestrel::cuda {

namespace {

__global__ void softmax_rows_kernel(const void* x, int xdt, void* y, int ydt, int rows, int extent, int inner) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= rows) return;
  const int o = t / inner, i = t % inner;
  const long long base = (long long)o * extent * inner + i;
  float mx = -INFINITY;
  for (int k = 0; k < extent; ++k) mx = fmaxf(mx, load_as_float(x, xdt, base + (long long)k * inner));
  float sum = 0.f;
  for (int k = 0; k < extent; ++k) sum += expf(load_as_float(x, xdt, base + (long long)k * inner) - mx);
  for (int k = 0; k < extent; ++k)
    store_from_float(y, ydt, base + (long long)k * inner, expf(load_as_float(x, xdt, base + (long long)k * inner) - mx) / sum);
}

__global__ void softmax_warp_kernel(const void* x, int xdt, void* y, int ydt, int rows, int extent) {
  const int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;
  const long long base = (long long)row * extent;
  float mx = -INFINITY;
  for (int k = lane; k < extent; k += 32) mx = fmaxf(mx, load_as_float(x, xdt, base + k));
  for (int o = 16; o; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
  float sum = 0.f;
  for (int k = lane; k < extent; k += 32) sum += expf(load_as_float(x, xdt, base + k) - mx);
  for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
  for (int k = lane; k < extent; k += 32) store_from_float(y, ydt, base + k, expf(load_as_float(x, xdt, base + k) - mx) / sum);
}

class SoftmaxLayer : public Layer {
 public:
  explicit SoftmaxLayer(const LayerSpec& s) : Layer(s) {
    const TensorMeta& x = *s.in[0];
    const TensorMeta& y = *s.out[0];
    KESTREL_CHECK(x.dense_row_major() && y.dense_row_major(), "internal: Softmax needs dense row-major tensors");
    const int64_t r = x.rank();
    const bool legacy = s.attrs.i("kestrel_legacy_axis", 0);
    const int64_t axis = normalize_axis(s.attrs.i("axis", legacy ? 1 : -1), r, Node{s.name, s.op, {}, {}, {}});
    int64_t outer = 1, extent = 1, inner = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= x.shape[i];
    if (legacy) {
      for (int64_t i = axis; i < r; ++i) extent *= x.shape[i];
    } else {
      extent = x.shape[axis];
      for (int64_t i = axis + 1; i < r; ++i) inner *= x.shape[i];
    }
    rows_ = static_cast<int>(outer * inner);
    extent_ = static_cast<int>(extent);
    inner_ = static_cast<int>(inner);
    xdt_ = static_cast<int>(x.dtype);
    ydt_ = static_cast<int>(y.dtype);
  }
  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (!rows_ || !extent_) return;
    if (inner_ == 1 && extent_ >= 64) {
      softmax_warp_kernel<<<blocks_for(rows_, 8), 256, 0, stream>>>(io.in[0], xdt_, io.out[0], ydt_, rows_, extent_);
    } else {
      softmax_rows_kernel<<<blocks_for(rows_, 128), 128, 0, stream>>>(io.in[0], xdt_, io.out[0], ydt_, rows_, extent_, inner_);
    }
    KLAUNCH("softmax");
  }

 private:
  int rows_, extent_, inner_, xdt_, ydt_;
};

}  // namespace

std::unique_ptr<Layer> make_softmax(const LayerSpec& s) { return std::make_unique<SoftmaxLayer>(s); }

}  // namespace kestrel::cuda
