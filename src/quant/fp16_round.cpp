// FP16 storage in the simulation: a value an FP16 engine keeps is its nearest half, computed with the
// IR's own conversion (round to nearest even, as __float2half_rn).
#include "quant/internal.h"

namespace kestrel::quant::detail {

float round_fp16(float v) { return f16_to_f32(f32_to_f16(v)); }

void round_fp16_inplace(HostTensor& t) {
  if (t.dtype() != DType::F32) return;
  float* p = t.data<float>();
  const int64_t n = t.numel();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = round_fp16(p[i]);
}

}  // namespace kestrel::quant::detail
