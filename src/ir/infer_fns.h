#pragma once
// Shape/dtype inference functions referenced by the op table (op_registry.cpp).
#include "ir/op_registry.h"

namespace kestrel {

// Shape arithmetic on a model's own constants (split sizes, reshape targets, pads, repeats): a
// malformed model can make it overflow, which is an error, not undefined behaviour.
inline int64_t dim_add(const InferContext& c, int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) c.error("shape arithmetic overflows");
  return r;
}
inline int64_t dim_mul(const InferContext& c, int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) c.error("shape arithmetic overflows");
  return r;
}

// infer_elementwise.cpp
void infer_unary(InferContext&);
void infer_same_as_first(InferContext&);
void infer_binary(InferContext&);
void infer_compare(InferContext&);
void infer_variadic(InferContext&);
void infer_where(InferContext&);
void infer_cast(InferContext&);
void infer_quantize(InferContext&);
void infer_dequantize(InferContext&);
// infer_nn.cpp
void infer_conv(InferContext&);
void infer_conv_transpose(InferContext&);
void infer_pool(InferContext&);
void infer_global_pool(InferContext&);
void infer_resize(InferContext&);
void infer_matmul(InferContext&);
void infer_gemm(InferContext&);
void infer_reduce(InferContext&);
int64_t flops_conv(const Graph&, const Node&);
int64_t flops_conv_transpose(const Graph&, const Node&);
int64_t flops_matmul(const Graph&, const Node&);
int64_t flops_gemm(const Graph&, const Node&);
// infer_layout.cpp
void infer_concat(InferContext&);
void infer_split(InferContext&);
void infer_slice(InferContext&);
void infer_reshape(InferContext&);
void infer_flatten(InferContext&);
void infer_transpose(InferContext&);
void infer_gather(InferContext&);
void infer_shape(InferContext&);
void infer_unsqueeze(InferContext&);
void infer_squeeze(InferContext&);
void infer_constant(InferContext&);
void infer_constant_of_shape(InferContext&);
void infer_expand(InferContext&);
void infer_range(InferContext&);
void infer_pad(InferContext&);
void infer_tile(InferContext&);
// infer_fused.cpp (Kestrel's fused ops)
void infer_fused_conv(InferContext&);
void infer_fused_sppf(InferContext&);
void infer_fused_attention(InferContext&);
int64_t flops_attention(const Graph&, const Node&);
void infer_detect_v8(InferContext&);
void infer_detect_v5(InferContext&);
}  // namespace kestrel
