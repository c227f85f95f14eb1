#pragma once
// How far a kernel's output may be from a reference, derived from the precision, in one place: the
// tuner's acceptance check of a tactic against the layer's reference tactic (both on the GPU), and the
// op tests' check of every tactic against the CPU reference backend (tests/cuda/ops_test.cpp).
// Unit roundoff u of the storage format: FP32 2^-24; FP16 2^-11 (10 stored mantissa bits), TF32 the
// same. INT8 layers have their exact contract (include/kestrel/quant.h), checked code by code in
// tests/cuda/int8_ops_test.cpp; the tuner's INT8 bound below only separates a working tactic from a
// broken one.
#include "kestrel/runtime.h"

namespace kestrel::bld {

inline constexpr double kUnitRoundoffF32 = 0x1p-24;
inline constexpr double kUnitRoundoffF16 = 0x1p-11;  // also TF32

// Tuner: relative L2 of a candidate tactic's output against the reference tactic's, same inputs.
//   FP32          2e-5 (~340 u): different summation orders (tiles, split-K) over K up to ~10^4 terms
//   FP16 / TF32   16 u (7.8e-3): each output rounded to fp16 once (<= u), partial sums of a tile
//                 rounded at most once more; 16 u leaves room for that and rejects a wrong kernel
//                 (~100%) or one wrong tile (>= a few %)
//   INT8 conv and quantize   2e-3: exact int32 accumulation; only the activation's last ulp may move an
//                 fp16 rounding (~1% of elements by one ulp) or, rarely, an int8 code
//   a tactic that leaves out a quantization (Layer::skips_quantization)   5e-2: it differs from the
//                 reference by the quantization error itself (well under 5% on the tuner's inputs)
inline double tactic_rel_l2_bound(Precision p, bool tf32, bool int8_layer, bool skips_quantization) {
  if (skips_quantization) return 5e-2;
  if (int8_layer) return 2e-3;
  return p != Precision::FP32 || tf32 ? 16 * kUnitRoundoffF16 : 2e-5;
}

// Op tests: an engine of precision p (every tactic) against the CPU backend's FP32 result.
//   rel_l2   over the whole output
//   element  every element: |got - ref| <= element * (|ref| + rms(ref)); the rms term covers values
//            near zero that are sums of larger terms (a conv output), and a single wrong element of a
//            large tensor, invisible in the relative L2, fails here
//   FP32: 2^-13 both (measured on an H200 over 68 cases: rel. L2 <= 8.7e-7)
//   FP16: rel. L2 8 u = 3.9e-3, element 32 u = 1.6e-2 (inputs, weights and outputs stored in fp16:
//         u each; measured rel. L2 <= 5.6e-4 = 1.2 u)
struct OpBound {
  double rel_l2, element;
};
inline OpBound op_bound(Precision p) {
  if (p == Precision::FP32) return {0x1p-13, 0x1p-13};
  return {8 * kUnitRoundoffF16, 32 * kUnitRoundoffF16};
}

}  // namespace kestrel::bld
