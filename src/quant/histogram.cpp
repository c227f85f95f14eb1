// The |x| histogram of one tensor over the calibration set. One pass over the data: the range grows
// by powers of two, merging bins, instead of a first pass that only finds the maximum.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "kestrel/quant.h"

namespace kestrel::quant {

void Histogram::grow_to(double needed) {
  if (range_ <= 0) {  // nothing but zeros so far: they stay in bin 0 of any range
    range_ = needed;
    return;
  }
  uint64_t factor = 1;
  while (range_ * static_cast<double>(factor) < needed) factor *= 2;
  if (factor == 1) return;
  std::vector<uint64_t> merged(kBins, 0);
  for (int b = 0; b < kBins; ++b) merged[std::min<uint64_t>(b / factor, kBins - 1)] += bins_[b];
  bins_ = std::move(merged);
  range_ *= static_cast<double>(factor);
}

void Histogram::add(const float* x, int64_t n) {
  if (n <= 0) return;
  float batch_max = 0.f;
  int non_finite = 0;
#pragma omp parallel for reduction(max : batch_max) reduction(| : non_finite) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    non_finite |= !(a <= std::numeric_limits<float>::max());  // NaN compares false
    batch_max = std::max(batch_max, a);
  }
  KESTREL_CHECK(!non_finite, "calibration: the tensor holds NaN or infinity");
  max_abs_ = std::max(max_abs_, batch_max);
  count_ += static_cast<uint64_t>(n);
  if (batch_max > range_) grow_to(batch_max);
  if (range_ <= 0) {  // all zeros
    bins_[0] += static_cast<uint64_t>(n);
    return;
  }
  const double per_bin = kBins / range_;
  const int threads = omp_get_max_threads();
  std::vector<std::vector<uint64_t>> local(static_cast<size_t>(threads), std::vector<uint64_t>(kBins, 0));
#pragma omp parallel
  {
    std::vector<uint64_t>& mine = local[static_cast<size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      const double b = std::fabs(static_cast<double>(x[i])) * per_bin;
      ++mine[static_cast<size_t>(std::min<double>(b, kBins - 1))];
    }
  }
  for (auto& l : local)
    for (int b = 0; b < kBins; ++b) bins_[b] += l[b];
}

void Histogram::add_counts(const std::vector<uint64_t>& counts, double range, float max_abs) {
  KESTREL_CHECK(counts.size() == static_cast<size_t>(kBins), "histogram: expected ", kBins, " bins");
  KESTREL_CHECK(count_ == 0 || range == range_, "histogram: ranges differ");
  range_ = range;
  max_abs_ = std::max(max_abs_, max_abs);
  for (int b = 0; b < kBins; ++b) {
    bins_[b] += counts[b];
    count_ += counts[b];
  }
}

}  // namespace kestrel::quant
