#pragma once
// Strided tensor descriptors passed by value to generic kernels (host and device code), and the host
// helpers that build them from tensor metadata. Indices are 32-bit: make_strided throws for tensors
// whose element span does not fit.
#include <cstdint>
#include <vector>

#include "backend/cuda/layer.h"

namespace kestrel::cuda {

struct Strided {
  int rank;
  int shape[kMaxRank];
  int stride[kMaxRank];
};

Strided make_strided(const Shape& shape, const std::vector<int64_t>& strides);
inline Strided make_strided(const TensorMeta& t) { return make_strided(t.shape, t.strides); }
// `in` viewed through the broadcast output shape `out` (numpy rules): rank aligned, stride 0 where
// the input has extent 1.
Strided broadcast_strided(const TensorMeta& in, const Shape& out);
// Element strides of a dense row-major / channels-last tensor.
std::vector<int64_t> row_major_strides(const Shape& s);
std::vector<int64_t> channels_last_strides(const Shape& s);
// Merges adjacent dims that are contiguous in every view (fewer div/mods per element).
void coalesce_dims(std::vector<Strided*> views);
// `v` in units of `lanes` consecutive elements (a 16-byte vector of them), when every run of `lanes`
// consecutive logical indices starting at a multiple of `lanes` is `lanes` consecutive elements in
// memory, starting at a multiple of `lanes` from the view's base: the innermost dim has stride 1 and an
// extent `lanes` divides, and `lanes` divides every other dim's stride. False otherwise.
bool vector_view(const Strided& v, int lanes, Strided* out);

}  // namespace kestrel::cuda

namespace kestrel::cuda {
// Reorders the dims of several views of one logical index space so the first view (the output) is
// walked in memory order, then coalesces: a dense NHWC elementwise op becomes one flat loop with
// coalesced accesses.
void optimize_views(std::vector<Strided*> views);
}  // namespace kestrel::cuda
