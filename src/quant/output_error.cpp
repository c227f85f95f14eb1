// How far an output is from the FP32 one, as the automatic search measures it.
#include <cmath>

#include "kestrel/quant.h"

namespace kestrel::quant {

namespace {
// sqrt(sum (y - r)^2 / sum r^2) over the elements `pick` selects.
template <typename Pick>
double rel_l2(const float* y, const float* r, int64_t n, Pick pick) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!pick(i)) continue;
    const double d = static_cast<double>(y[i]) - r[i];
    num += d * d;
    den += static_cast<double>(r[i]) * r[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}
}  // namespace

double output_error(const HostTensor& y, const HostTensor& ref) {
  KESTREL_CHECK(y.shape() == ref.shape() && y.dtype() == DType::F32 && ref.dtype() == DType::F32,
                "output_error: outputs differ in shape or are not float32");
  const float* a = y.data<float>();
  const float* b = ref.data<float>();
  const int64_t n = y.numel();
  if (y.rank() == 3) {
    const int64_t rows = y.dim(1), cols = y.dim(2);
    // [B, 4 + nc, A] (YOLOv8/11): boxes are rows 0-3. [B, A, 5 + nc] (YOLOv5): boxes are columns 0-3.
    if (rows >= 5 && rows < cols) {
      const double boxes = rel_l2(a, b, n, [&](int64_t i) { return (i / cols) % rows < 4; });
      const double scores = rel_l2(a, b, n, [&](int64_t i) { return (i / cols) % rows >= 4; });
      return 0.5 * (boxes + scores);
    }
    if (cols >= 6 && cols < rows) {
      const double boxes = rel_l2(a, b, n, [&](int64_t i) { return i % cols < 4; });
      const double scores = rel_l2(a, b, n, [&](int64_t i) { return i % cols >= 4; });
      return 0.5 * (boxes + scores);
    }
  }
  return rel_l2(a, b, n, [](int64_t) { return true; });
}

}  // namespace kestrel::quant
