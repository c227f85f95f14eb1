#pragma once
// Device helpers for the builder's tuner and the GPU tests: deterministic random fill, comparison of
// two strided tensors on the device (relative L2 in double; NaN anywhere gives +inf).
#include <cuda_runtime.h>

#include <cstdint>

#include "backend/cuda/layer.h"

namespace kestrel::cuda {

// Uniform values in [lo, hi) for float dtypes, 0/1 for Bool, small integers otherwise, over a
// tensor's whole element span (so strided views get their gaps filled too).
void fill_random(void* p, DType dt, int64_t n, uint32_t seed, float lo, float hi, cudaStream_t stream);
// Writes NaN into every element of a float view (nothing else of the buffer), so a kernel that
// leaves an output element unwritten is caught.
void poison_view(void* p, const TensorMeta& m, cudaStream_t stream);
// ||a - b|| / ||b|| over the elements of two views of one logical shape; synchronizes the stream.
double rel_l2_device(const void* a, const TensorMeta& ma, const void* b, const TensorMeta& mb, cudaStream_t stream);

}  // namespace kestrel::cuda
