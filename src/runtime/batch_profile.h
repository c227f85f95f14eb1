#pragma once
// Batch profiles (TensorRT's min/opt/max shapes, for the batch dimension). An engine holds a plan
// tuned for each of a few batches; a batch between them runs as consecutive slices, each through
// the largest plan that fits, or, where the plans' tuned times say that is cheaper, padded up to the
// smallest plan that holds it (through staging copies). Batches with a plan run exactly that plan.
// Header-only and pure: the builder and the runtime share it, tests check it without a GPU.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kestrel/error.h"
#include "kestrel/runtime.h"

namespace kestrel::rt {

// The batches to tune for: min, opt, max and the powers of two between min and max (so any batch
// needs at most about log2(max) plans).
inline std::vector<int64_t> profile_batches(int64_t min, int64_t opt, int64_t max) {
  KESTREL_CHECK(min >= 1 && min <= opt && opt <= max, "the batch profile needs 1 <= min <= opt <= max, not min ", min,
                ", opt ", opt, ", max ", max);
  std::vector<int64_t> b{min, opt, max};
  for (int64_t p = 1; p < max; p *= 2)
    if (p > min) b.push_back(p);
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  return b;
}

struct BatchSlice {
  size_t plan;    // index into the ascending plan batches
  int64_t start;  // first image of the slice
};

// How `batch` runs on plans of the ascending `batches` (batches[0] <= batch <= batches.back()).
// Greedy, largest plan first. What is left below the smallest plan runs as the last
// batches[0] images: those overlap images already computed, which are computed again (by the same
// model, so the values agree to the tactics' rounding) rather than padding a copy of the batch.
inline std::vector<BatchSlice> split_batch(int64_t batch, const std::vector<int64_t>& batches) {
  KESTREL_CHECK(!batches.empty() && batch >= batches.front() && batch <= batches.back(), "batch ", batch,
                " is outside the engine's profile [", batches.empty() ? 0 : batches.front(), ", ",
                batches.empty() ? 0 : batches.back(), "]");
  std::vector<BatchSlice> out;
  int64_t start = 0;
  while (start < batch) {
    const int64_t left = batch - start;
    size_t k = batches.size();
    while (k > 0 && batches[k - 1] > left) --k;
    if (k == 0) {  // fewer images left than the smallest plan takes
      out.push_back({0, batch - batches[0]});
      break;
    }
    out.push_back({k - 1, start});
    start += batches[k - 1];
  }
  return out;
}

// How one batch runs: its slices, or (slices empty) the whole batch padded up to plan `padded`.
struct BatchRun {
  std::vector<BatchSlice> slices;
  size_t padded = SIZE_MAX;
};

// Slices or padding (Auto: by estimated time): plan_ms[k] is plan k's tuned time (its layers' sum),
// and padding costs the plan that holds the batch plus copy_ms_per_image for each image's staging
// copies in and out. A batch that has its own plan always runs it.
inline BatchRun plan_batch_run(int64_t batch, const std::vector<int64_t>& batches, const std::vector<double>& plan_ms,
                               double copy_ms_per_image,
                               RuntimeConfig::BatchPadding pad = RuntimeConfig::BatchPadding::Auto) {
  using P = RuntimeConfig::BatchPadding;
  KESTREL_CHECK(plan_ms.size() == batches.size(), "internal: ", plan_ms.size(), " plan times for ", batches.size(), " plans");
  BatchRun r;
  r.slices = split_batch(batch, batches);
  if (r.slices.size() <= 1 || pad == P::Never) return r;
  double sliced = 0;
  for (const BatchSlice& s : r.slices) sliced += plan_ms[s.plan];
  size_t k = 0;
  while (batches[k] < batch) ++k;  // exists: batch <= batches.back()
  if (pad == P::Always || plan_ms[k] + copy_ms_per_image * static_cast<double>(batch) < sliced) {
    r.slices.clear();
    r.padded = k;
  }
  return r;
}

}  // namespace kestrel::rt
