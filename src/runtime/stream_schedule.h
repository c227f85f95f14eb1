#pragma once
// Layers on several streams (TensorRT's auxiliary streams): independent branches of a plan, such as a
// detection head's box and class branches at each scale, run side by side instead of one after
// another. At small batches each layer fills a fraction of the GPU, so overlapping them shortens the
// plan; a CUDA graph captured from the streams keeps the overlap as graph edges.
//
// Everything here is plain host logic on memory regions, shared by the builder (which assigns each
// layer a stream and sizes buffer lifetimes so that no buffer is reused while a concurrent layer may
// still touch it) and the runtime (which derives every wait from the memory the layers touch, so a
// plan runs correctly whatever the stream assignment says).
#include <cstdint>
#include <vector>

#include "kestrel/graph.h"

namespace kestrel::rt {

// A strided block of bytes in one address space (an arena, an I/O buffer, a root tensor).
struct Region {
  int64_t space = 0;
  int64_t offset = 0;             // bytes from the space's start to element 0
  int64_t elem_bytes = 1;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;   // bytes, non-negative
};

// A tensor of `dtype` with `shape` and `strides` (in elements) whose element 0 lies `offset` bytes into
// `space`.
Region tensor_region(int64_t space, int64_t offset, DType dtype, const Shape& shape, const std::vector<int64_t>& strides);

// False only when the two regions provably share no byte: different spaces, disjoint hulls, or the
// channel slices of one channels-last buffer (disjoint unit-stride runs inside a common row pitch).
bool may_overlap(const Region& a, const Region& b);

struct LayerAccess {
  std::vector<Region> reads, writes;
};

// For each layer (in execution order), the earlier layers it must follow: it reads what they wrote,
// or writes what they read or wrote. Ascending.
std::vector<std::vector<int>> memory_hazards(const std::vector<LayerAccess>& layers);

// A stream per layer for `streams` streams (stream 0 the caller's): a layer continues the stream of
// the latest dependency that is still that stream's last layer, else takes a stream whose last layer
// already precedes it (or an unused one), else the stream idle longest. One stream: all zero.
std::vector<int> assign_streams(const std::vector<std::vector<int>>& deps, int streams);

// The first position from which every later layer follows layer i (through dependencies and stream
// order), for each i: a buffer that i touches may be reused from there on. Sequential plans: i + 1.
std::vector<int> join_positions(const std::vector<std::vector<int>>& deps, const std::vector<int>& stream);

// The event waits a run needs: waits[i] are the layers on other streams whose completion layer i
// waits for (those not already implied by earlier waits and stream order); records[i] says layer i
// records an event for such a wait.
struct StreamSync {
  int streams = 1;
  std::vector<std::vector<int>> waits;
  std::vector<char> records;
};
StreamSync stream_sync(const std::vector<std::vector<int>>& deps, const std::vector<int>& stream);

}  // namespace kestrel::rt
