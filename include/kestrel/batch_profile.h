#pragma once
// The checks of a batch profile (min/opt/max batch) as a user gives it, in one place for the CLI,
// the Python package and model opening; the builder's own check is the internal backstop.
#include <cstdint>

namespace kestrel {

// `batch` is a single bound batch (0: none). Throws UsageError for a batch next to a profile, a
// profile without its largest batch, negative sizes, or not min <= opt <= max (min 0 means 1, opt 0
// means max). No profile at all (all three 0) passes.
void check_batch_profile(int64_t batch, int64_t min_batch, int64_t opt_batch, int64_t max_batch);

}  // namespace kestrel
