#include "kestrel/batch_profile.h"

#include <string>

#include "kestrel/error.h"

namespace kestrel {

void check_batch_profile(int64_t batch, int64_t min_batch, int64_t opt_batch, int64_t max_batch) {
  if (min_batch < 0 || opt_batch < 0 || max_batch < 0) throw UsageError("batch profile sizes must not be negative");
  if (!min_batch && !opt_batch && !max_batch) return;
  if (!max_batch) throw UsageError("a batch profile needs its largest batch (max batch)");
  if (batch)
    throw UsageError("a batch (" + std::to_string(batch) + ") binds one batch and a batch profile makes an engine for a "
                     "range: give one");
  const int64_t mn = min_batch ? min_batch : 1, op = opt_batch ? opt_batch : max_batch;
  if (!(mn <= op && op <= max_batch))
    throw UsageError("the batch profile needs min <= opt <= max, not " + std::to_string(mn) + " / " + std::to_string(op) +
                     " / " + std::to_string(max_batch));
}

}  // namespace kestrel
