#pragma once
// Factories of the CUDA layers, one per op family (one .cu file each); dispatch.cpp maps op names to
// them.
#include <memory>

#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/layer.h"

namespace kestrel::cuda {
std::unique_ptr<Layer> make_elementwise(const LayerSpec&);  // elementwise.cu
bool is_elementwise_op(const std::string& op);
std::unique_ptr<Layer> make_copy(const LayerSpec&);  // copy.cu
std::unique_ptr<Layer> make_tile(const LayerSpec&);
std::unique_ptr<Layer> make_pad(const LayerSpec&);
std::unique_ptr<Layer> make_gather(const LayerSpec&);
std::unique_ptr<Layer> make_conv(const LayerSpec&);            // conv.cu
std::unique_ptr<Layer> make_conv_transpose(const LayerSpec&);  // conv_transpose.cu
std::unique_ptr<Layer> make_conv_int8(const LayerSpec&);       // conv_int8.cu
std::unique_ptr<Layer> make_quantize_int8(const LayerSpec&);   // quantize.cu
std::unique_ptr<Layer> make_pool(const LayerSpec&);            // pooling.cu
std::unique_ptr<Layer> make_sppf(const LayerSpec&);
std::unique_ptr<Layer> make_resize(const LayerSpec&);   // resize.cu
std::unique_ptr<Layer> make_softmax(const LayerSpec&);  // softmax.cu
std::unique_ptr<Layer> make_matmul(const LayerSpec&);   // matmul.cu
std::unique_ptr<Layer> make_attention(const LayerSpec&);  // attention.cu
std::unique_ptr<Layer> make_reduce(const LayerSpec&);   // reduce.cu
std::unique_ptr<Layer> make_detect(const LayerSpec&);   // detect.cu
int activation_code(const std::string& act);            // conv.cu
// Split-K arrival counters a convolution layer owns (one set per context, conv.cu): zero at rest,
// because the last CTA of each tile resets its counter, so they are cleared once, when allocated.
class SplitKCounters {
 public:
  SplitKCounters() = default;
  SplitKCounters(const SplitKCounters&) = delete;
  SplitKCounters& operator=(const SplitKCounters&) = delete;
  ~SplitKCounters();
  void reserve(int64_t n);  // at least n counters
  int* get() const { return p_; }

 private:
  int* p_ = nullptr;
  int64_t n_ = 0;
};
// The pixel stride of a channels-last tensor (TensorMeta::channels_last_ld) the layer of `s` needs in
// that form; an error naming the node otherwise (tensor_meta.cpp).
int64_t pixel_stride(const TensorMeta& t, const LayerSpec& s);
// A convolution layer's ConvParams (conv.cu): window geometry from the attributes (as the CPU computes
// it), shapes, element strides of x, y and the residual r (may be null), the fused activation and its
// parameters. w is OHWI. Checks that the weights and the output fit the input and the group.
ConvParams conv_params(const LayerSpec& s, const TensorMeta& x, const TensorMeta& w, const TensorMeta& y,
                       const TensorMeta* r, bool* symmetric_pads = nullptr);
}  // namespace kestrel::cuda
