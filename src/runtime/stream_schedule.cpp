#include "runtime/stream_schedule.h"

#include <algorithm>
#include <limits>

namespace kestrel::rt {

namespace {
// [lo, hi): the bytes between a region's first and last element; false for an empty region.
bool hull(const Region& r, int64_t* lo, int64_t* hi) {
  int64_t span = 0;
  for (size_t d = 0; d < r.shape.size(); ++d) {
    if (r.shape[d] <= 0) return false;
    span += (r.shape[d] - 1) * r.strides[d];
  }
  *lo = r.offset;
  *hi = r.offset + span + r.elem_bytes;
  return true;
}

// The smallest stride of a dimension that is neither trivial nor the unit-stride one (the row pitch
// of a channels-last buffer), over both regions; 0 when there is none.
int64_t row_pitch(const Region& a, const Region& b) {
  int64_t pitch = std::numeric_limits<int64_t>::max();
  for (const Region* r : {&a, &b}) {
    bool unit_seen = false;
    for (size_t d = 0; d < r->shape.size(); ++d) {
      if (r->shape[d] == 1) continue;
      if (r->strides[d] == r->elem_bytes && !unit_seen) {
        unit_seen = true;
        continue;
      }
      if (r->strides[d] > 0) pitch = std::min(pitch, r->strides[d]);
    }
  }
  return pitch == std::numeric_limits<int64_t>::max() ? 0 : pitch;
}

// The bytes a region covers within one row pitch, [lo, hi), when every element lies at
// row * pitch + (a byte of that run): its other dimensions step by whole pitches.
bool row_run(const Region& r, int64_t pitch, int64_t* lo, int64_t* hi) {
  int64_t run = 1;
  bool unit_seen = false;
  for (size_t d = 0; d < r.shape.size(); ++d) {
    if (r.shape[d] == 1) continue;
    if (r.strides[d] == r.elem_bytes && !unit_seen) {
      unit_seen = true;
      run = r.shape[d];
      continue;
    }
    if (r.strides[d] % pitch != 0) return false;
  }
  if (r.offset < 0) return false;
  *lo = r.offset % pitch;
  *hi = *lo + run * r.elem_bytes;
  return *hi <= pitch;
}

using Bits = std::vector<uint64_t>;
void set_bit(Bits& b, int i) { b[static_cast<size_t>(i) >> 6] |= uint64_t{1} << (i & 63); }
bool test_bit(const Bits& b, int i) { return (b[static_cast<size_t>(i) >> 6] >> (i & 63)) & 1; }
void or_into(Bits& dst, const Bits& src) {
  for (size_t w = 0; w < dst.size(); ++w) dst[w] |= src[w];
}
// Streams a schedule uses: one more than its highest stream index.
int stream_count(const std::vector<int>& stream) {
  int n = 1;
  for (int x : stream) n = std::max(n, x + 1);
  return n;
}
}  // namespace

Region tensor_region(int64_t space, int64_t offset, DType dtype, const Shape& shape, const std::vector<int64_t>& strides) {
  Region r;
  r.space = space;
  r.offset = offset;
  r.elem_bytes = static_cast<int64_t>(dtype_size(dtype));
  r.shape = shape;
  for (int64_t s : strides) r.strides.push_back(s * r.elem_bytes);
  return r;
}

bool may_overlap(const Region& a, const Region& b) {
  if (a.space != b.space) return false;
  int64_t alo, ahi, blo, bhi;
  if (!hull(a, &alo, &ahi) || !hull(b, &blo, &bhi)) return false;
  if (ahi <= blo || bhi <= alo) return false;
  const int64_t pitch = row_pitch(a, b);
  if (pitch <= 0) return true;
  int64_t ra, rb, sa, sb;
  if (!row_run(a, pitch, &ra, &rb) || !row_run(b, pitch, &sa, &sb)) return true;
  return ra < sb && sa < rb;
}

std::vector<std::vector<int>> memory_hazards(const std::vector<LayerAccess>& layers) {
  auto any = [](const std::vector<Region>& x, const std::vector<Region>& y) {
    for (const Region& a : x)
      for (const Region& b : y)
        if (may_overlap(a, b)) return true;
    return false;
  };
  std::vector<std::vector<int>> deps(layers.size());
  for (size_t i = 0; i < layers.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (any(layers[i].reads, layers[j].writes) || any(layers[i].writes, layers[j].reads) ||
          any(layers[i].writes, layers[j].writes))
        deps[i].push_back(static_cast<int>(j));
  return deps;
}

std::vector<int> assign_streams(const std::vector<std::vector<int>>& deps, int streams) {
  const int n = static_cast<int>(deps.size());
  std::vector<int> stream(deps.size(), 0);
  if (streams <= 1) return stream;
  const size_t words = (deps.size() + 63) / 64;
  std::vector<Bits> before(deps.size(), Bits(words, 0));  // layers that precede each layer
  std::vector<int> tail(static_cast<size_t>(streams), -1);
  for (int i = 0; i < n; ++i) {
    Bits& anc = before[i];
    for (int d : deps[i]) {
      or_into(anc, before[d]);
      set_bit(anc, d);
    }
    int s = -1, latest = -1;
    for (int d : deps[i])
      if (tail[stream[d]] == d && d > latest) latest = d, s = stream[d];
    for (int k = 0; s < 0 && k < streams; ++k)
      if (tail[k] < 0 || test_bit(anc, tail[k])) s = k;
    if (s < 0) s = static_cast<int>(std::min_element(tail.begin(), tail.end()) - tail.begin());
    if (tail[s] >= 0) {
      or_into(anc, before[tail[s]]);
      set_bit(anc, tail[s]);
    }
    stream[i] = s;
    tail[s] = i;
  }
  return stream;
}

std::vector<int> join_positions(const std::vector<std::vector<int>>& deps, const std::vector<int>& stream) {
  const int n = static_cast<int>(deps.size());
  std::vector<std::vector<int>> next(deps.size());
  std::vector<int> last_on(static_cast<size_t>(stream_count(stream)), -1);
  for (int i = 0; i < n; ++i) {
    for (int d : deps[i]) next[d].push_back(i);
    int& prev = last_on[static_cast<size_t>(stream[i])];
    if (prev >= 0) next[prev].push_back(i);
    prev = i;
  }
  const size_t words = (deps.size() + 63) / 64;
  std::vector<Bits> after(deps.size(), Bits(words, 0));
  for (int i = n - 1; i >= 0; --i)
    for (int c : next[i]) {
      or_into(after[i], after[c]);
      set_bit(after[i], c);
    }
  std::vector<int> join(deps.size());
  for (int i = 0; i < n; ++i) {
    int k = n;
    while (k - 1 > i && test_bit(after[i], k - 1)) --k;
    join[i] = k;
  }
  return join;
}

StreamSync stream_sync(const std::vector<std::vector<int>>& deps, const std::vector<int>& stream) {
  StreamSync s;
  s.streams = stream_count(stream);
  s.waits.resize(deps.size());
  s.records.assign(deps.size(), 0);
  // Vector clocks: known[k][j] is the last layer of stream j that stream k has already waited for.
  std::vector<std::vector<int>> known(static_cast<size_t>(s.streams), std::vector<int>(static_cast<size_t>(s.streams), -1));
  std::vector<std::vector<int>> after(deps.size());  // each layer's clock once it ran
  for (size_t i = 0; i < deps.size(); ++i) {
    const int k = stream[i];
    std::vector<int>& clock = known[static_cast<size_t>(k)];
    std::vector<int> d = deps[i];
    std::sort(d.rbegin(), d.rend());  // the latest first: its wait may cover the earlier ones
    for (int j : d) {
      const int sj = stream[static_cast<size_t>(j)];
      if (sj == k || clock[static_cast<size_t>(sj)] >= j) continue;
      s.waits[i].push_back(j);
      s.records[static_cast<size_t>(j)] = 1;
      for (size_t x = 0; x < clock.size(); ++x) clock[x] = std::max(clock[x], after[static_cast<size_t>(j)][x]);
    }
    clock[static_cast<size_t>(k)] = static_cast<int>(i);
    after[i] = clock;
  }
  return s;
}

}  // namespace kestrel::rt
