// The four ways to turn a histogram into a threshold (amax), and weight quantization.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>
#include <limits>

#include "backend/cpu/kernels.h"
#include "kestrel/quant.h"

namespace kestrel::quant {

const char* calib_algo_name(CalibAlgo a) {
  switch (a) {
    case CalibAlgo::Entropy: return "entropy";
    case CalibAlgo::MinMax: return "minmax";
    case CalibAlgo::Percentile: return "percentile";
    case CalibAlgo::Mse: return "mse";
  }
  return "?";
}

CalibAlgo parse_calib_algo(const std::string& name) {
  if (name == "entropy") return CalibAlgo::Entropy;
  if (name == "minmax") return CalibAlgo::MinMax;
  if (name == "percentile") return CalibAlgo::Percentile;
  if (name == "mse") return CalibAlgo::Mse;
  throw UsageError("unknown calibration algorithm '" + name + "' (expected entropy, minmax, percentile or mse)");
}

double amax_minmax(const Histogram& h) { return h.max_abs(); }

double amax_percentile(const Histogram& h, double percentile) {
  KESTREL_CHECK(percentile > 0 && percentile <= 100, "percentile ", percentile, " is outside (0, 100]");
  if (h.count() == 0 || percentile >= 100) return h.max_abs();
  const double target = percentile / 100.0 * static_cast<double>(h.count());
  double before = 0;
  for (int b = 0; b < Histogram::kBins; ++b) {
    const double c = static_cast<double>(h.bins()[b]);
    if (c > 0 && before + c >= target) {
      // Values are assumed spread evenly inside the bin, the only assumption a histogram allows.
      const double amax = (b + (target - before) / c) * h.bin_width();
      return std::min(amax, static_cast<double>(h.max_abs()));
    }
    before += c;
  }
  return h.max_abs();
}

int entropy_threshold_bins(const std::vector<uint64_t>& counts, int quant_levels, int start_bin) {
  const int n = static_cast<int>(counts.size());
  KESTREL_CHECK(n > 0 && quant_levels > 0, "entropy calibration: empty histogram");
  std::vector<double> bins(counts.begin(), counts.end());
  if (n > 1) bins[0] = bins[1];
  // suffix[i] = sum of bins[i..n): the outliers a threshold of i bins folds into its last bin.
  std::vector<double> suffix(static_cast<size_t>(n) + 1, 0.0);
  for (int i = n - 1; i >= 0; --i) suffix[i] = suffix[i + 1] + bins[i];
  std::vector<double> p(static_cast<size_t>(n)), q(static_cast<size_t>(n));
  std::vector<double> level_sum(static_cast<size_t>(quant_levels));
  std::vector<int> level_nonzero(static_cast<size_t>(quant_levels));
  double best_kl = std::numeric_limits<double>::infinity();
  int best = n;
  for (int i = std::min(start_bin, n); i <= n; ++i) {
    // Reference P: the first i bins, outliers folded into the last.
    double p_total = 0;
    for (int j = 0; j < i; ++j) p[j] = bins[j];
    p[i - 1] += suffix[i];
    for (int j = 0; j < i; ++j) p_total += p[j];
    // Candidate Q: bins [0, i) merged into quant_levels levels (bin j -> level floor(j * L / i), which
    // is what numpy's digitize over linspace(0, i, L + 1) gives), then expanded back over the bins that
    // were non-empty.
    std::fill(level_sum.begin(), level_sum.end(), 0.0);
    std::fill(level_nonzero.begin(), level_nonzero.end(), 0);
    for (int j = 0; j < i; ++j) {
      if (bins[j] == 0) continue;
      const int level = static_cast<int>(static_cast<int64_t>(j) * quant_levels / i);
      level_sum[level] += bins[j];
      ++level_nonzero[level];
    }
    double q_total = 0;
    for (int j = 0; j < i; ++j) {
      const int level = static_cast<int>(static_cast<int64_t>(j) * quant_levels / i);
      q[j] = bins[j] == 0 ? 0.0 : level_sum[level] / level_nonzero[level];
      q_total += q[j];
    }
    if (p_total <= 0 || q_total <= 0) continue;
    double kl = 0;
    for (int j = 0; j < i && std::isfinite(kl); ++j) {
      if (p[j] <= 0) continue;
      const double pj = p[j] / p_total, qj = q[j] / q_total;
      kl = qj > 0 ? kl + pj * std::log(pj / qj) : std::numeric_limits<double>::infinity();
    }
    if (kl <= best_kl) {  // ties: the largest threshold, as the reference implementation picks
      best_kl = kl;
      best = i;
    }
  }
  return best;
}

double amax_entropy(const Histogram& h) {
  if (h.count() == 0 || h.range() <= 0) return 0;
  const int i = entropy_threshold_bins(h.bins());
  return std::min(i * h.bin_width(), static_cast<double>(h.range()));
}

double amax_mse(const Histogram& h) {
  if (h.count() == 0 || h.range() <= 0) return 0;
  const auto& bins = h.bins();
  const double bw = h.bin_width();
  // Only the non-empty bins cost anything: collect them once.
  std::vector<std::pair<double, double>> filled;  // (centre, count)
  for (int b = 0; b < Histogram::kBins; ++b)
    if (bins[b]) filled.emplace_back((b + 0.5) * bw, static_cast<double>(bins[b]));
  double best_err = std::numeric_limits<double>::infinity(), best = h.range();
  for (int i = 16; i <= Histogram::kBins; ++i) {
    const double amax = i * bw, s = amax / 127;
    double err = 0;
    for (const auto& [c, n] : filled) {
      const double q = s * std::min(std::nearbyint(c / s), 127.0);
      err += n * (c - q) * (c - q);
    }
    if (err < best_err) {
      best_err = err;
      best = amax;
    }
  }
  return std::min(best, static_cast<double>(h.range()));
}

float scale_from_amax(double amax) {
  // All zeros, or values so small that amax / 127 is no normal float (they quantize to 0 whatever the
  // scale): 1, since a zero or denormal scale is refused wherever scales are read.
  const float s = static_cast<float>(amax) / 127.f;
  return std::isnormal(s) && s > 0 ? s : 1.f;
}

float compute_scale(const Histogram& h, CalibAlgo algo, double percentile) {
  switch (algo) {
    case CalibAlgo::Entropy: return scale_from_amax(amax_entropy(h));
    case CalibAlgo::MinMax: return scale_from_amax(amax_minmax(h));
    case CalibAlgo::Percentile: return scale_from_amax(amax_percentile(h, percentile));
    case CalibAlgo::Mse: return scale_from_amax(amax_mse(h));
  }
  return 1.f;
}

QuantizedWeights quantize_weights(const HostTensor& w) {
  KESTREL_CHECK(w.dtype() == DType::F32 && w.rank() >= 1 && w.dim(0) > 0, "quantize_weights: float32 weights with an output-channel axis expected");
  QuantizedWeights r;
  r.q = HostTensor(DType::I8, w.shape());
  const int64_t m = w.dim(0), per = w.numel() / m;
  r.scales.resize(static_cast<size_t>(m));
  const float* pw = w.data<float>();
  int8_t* pq = r.q.data<int8_t>();
  for (int64_t c = 0; c < m; ++c) {
    float mx = 0.f;
    for (int64_t k = 0; k < per; ++k) mx = std::max(mx, std::fabs(pw[c * per + k]));
    const float s = scale_from_amax(mx);
    r.scales[static_cast<size_t>(c)] = s;
    for (int64_t k = 0; k < per; ++k)
      pq[c * per + k] = static_cast<int8_t>(cpu::quantize_value(pw[c * per + k], s, 0, -127, 127));
  }
  return r;
}

}  // namespace kestrel::quant
