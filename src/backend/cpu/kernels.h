#pragma once
// Declarations of every CPU kernel; the table in kernel_table.cpp maps op names to them.
#include "backend/cpu/kernel.h"

namespace kestrel::cpu {
#define KESTREL_CPU_KERNEL(fn) void fn(const Node&, Inputs, Outputs)
KESTREL_CPU_KERNEL(k_relu); KESTREL_CPU_KERNEL(k_leaky_relu); KESTREL_CPU_KERNEL(k_sigmoid);
KESTREL_CPU_KERNEL(k_hard_sigmoid); KESTREL_CPU_KERNEL(k_hard_swish); KESTREL_CPU_KERNEL(k_tanh);
KESTREL_CPU_KERNEL(k_erf); KESTREL_CPU_KERNEL(k_exp); KESTREL_CPU_KERNEL(k_log); KESTREL_CPU_KERNEL(k_sqrt);
KESTREL_CPU_KERNEL(k_reciprocal); KESTREL_CPU_KERNEL(k_floor); KESTREL_CPU_KERNEL(k_ceil);
KESTREL_CPU_KERNEL(k_round); KESTREL_CPU_KERNEL(k_neg); KESTREL_CPU_KERNEL(k_abs); KESTREL_CPU_KERNEL(k_not);
KESTREL_CPU_KERNEL(k_clip);
KESTREL_CPU_KERNEL(k_add); KESTREL_CPU_KERNEL(k_sub); KESTREL_CPU_KERNEL(k_mul); KESTREL_CPU_KERNEL(k_div);
KESTREL_CPU_KERNEL(k_pow); KESTREL_CPU_KERNEL(k_equal); KESTREL_CPU_KERNEL(k_less); KESTREL_CPU_KERNEL(k_greater);
KESTREL_CPU_KERNEL(k_min); KESTREL_CPU_KERNEL(k_max); KESTREL_CPU_KERNEL(k_sum); KESTREL_CPU_KERNEL(k_where);
KESTREL_CPU_KERNEL(k_conv); KESTREL_CPU_KERNEL(k_conv_transpose); KESTREL_CPU_KERNEL(k_batch_norm);
KESTREL_CPU_KERNEL(k_max_pool); KESTREL_CPU_KERNEL(k_average_pool); KESTREL_CPU_KERNEL(k_global_pool);
KESTREL_CPU_KERNEL(k_copy); KESTREL_CPU_KERNEL(k_concat); KESTREL_CPU_KERNEL(k_split); KESTREL_CPU_KERNEL(k_slice);
KESTREL_CPU_KERNEL(k_transpose); KESTREL_CPU_KERNEL(k_gather); KESTREL_CPU_KERNEL(k_expand); KESTREL_CPU_KERNEL(k_tile);
KESTREL_CPU_KERNEL(k_pad);
KESTREL_CPU_KERNEL(k_shape); KESTREL_CPU_KERNEL(k_constant); KESTREL_CPU_KERNEL(k_constant_of_shape);
KESTREL_CPU_KERNEL(k_range); KESTREL_CPU_KERNEL(k_cast);
KESTREL_CPU_KERNEL(k_resize); KESTREL_CPU_KERNEL(k_softmax); KESTREL_CPU_KERNEL(k_matmul); KESTREL_CPU_KERNEL(k_gemm);
KESTREL_CPU_KERNEL(k_reduce); KESTREL_CPU_KERNEL(k_quantize); KESTREL_CPU_KERNEL(k_dequantize);
// Kestrel's fused ops (fused_conv.cpp, fused_sppf.cpp, fused_attention.cpp, detect_decode.cpp).
KESTREL_CPU_KERNEL(k_fused_conv); KESTREL_CPU_KERNEL(k_fused_sppf); KESTREL_CPU_KERNEL(k_fused_attention);
KESTREL_CPU_KERNEL(k_detect_v8); KESTREL_CPU_KERNEL(k_detect_v5);
#undef KESTREL_CPU_KERNEL

// Shared with the INT8 simulation: one element of QuantizeLinear, exactly as the GPU rounds it.
float quantize_value(float x, float scale, int32_t zp, int32_t lo, int32_t hi);
}  // namespace kestrel::cpu
