// Memory planning: every activation buffer (a root tensor with its views) and every layer's scratch
// lives from its first use to its last (with layers on several streams: until every later layer
// follows that last use, so no concurrent layer can still touch it when it is reused); buffers are
// placed into one arena by interval packing, largest first, each at the lowest 256-byte aligned
// offset that no buffer alive at the same time occupies.
// Also lays the weights out in one blob.
#include <algorithm>
#include <cstring>

#include "builder/build_plan.h"
#include "runtime/stream_schedule.h"

namespace kestrel::bld {

namespace {
constexpr int64_t kAlign = 256;
int64_t align_up(int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

struct Buffer {
  int64_t size, first, last;
  int tensor = -1;  // root tensor, or -1 for a layer's scratch
  int layer = -1;
  int64_t offset = 0;
};
}  // namespace

void assemble_weights(BuildPlan& p) {
  std::vector<bool> used(p.tensors.size(), false);
  for (const BLayer& l : p.layers)
    if (!l.removed)
      for (int i : l.in)
        if (i >= 0) used[i] = true;
  p.weights.clear();
  for (size_t t = 0; t < p.tensors.size(); ++t) {
    BTensor& x = p.tensors[t];
    if (x.storage != rt::Storage::Weights || !used[t]) continue;
    const int64_t off = align_up(static_cast<int64_t>(p.weights.size()));
    p.weights.resize(static_cast<size_t>(off + static_cast<int64_t>(x.data->nbytes())));
    if (x.data->nbytes()) std::memcpy(p.weights.data() + off, x.data->raw(), x.data->nbytes());
    x.offset = off;
  }
}

void pack_arena(BuildPlan& p) {
  const std::vector<int> order = live_layers(p);
  std::vector<int> stream;
  for (int i : order) stream.push_back(p.layers[i].stream);
  // A buffer touched at position k stays reserved up to join[k] - 1 (k itself when sequential).
  const std::vector<int> join = rt::join_positions(layer_dependencies(p, order), stream);
  std::vector<int64_t> first(p.tensors.size(), -1), last(p.tensors.size(), -1);
  for (size_t k = 0; k < order.size(); ++k) {
    const BLayer& l = p.layers[order[k]];
    auto touch = [&](int t) {
      if (t < 0) return;
      const BTensor& x = p.tensors[t];
      if (x.storage != rt::Storage::Arena) return;
      const int r = x.root;
      if (first[r] < 0) first[r] = static_cast<int64_t>(k);
      last[r] = std::max<int64_t>(last[r], join[k] - 1);
    };
    for (int t : l.in) touch(t);
    for (int t : l.out) touch(t);
  }
  std::vector<Buffer> bufs;
  p.activation_bytes = 0;
  for (size_t t = 0; t < p.tensors.size(); ++t) {
    const BTensor& x = p.tensors[t];
    if (x.storage != rt::Storage::Arena) continue;
    const bool used = first[x.root] >= 0;
    if (used) p.activation_bytes += x.bytes();
    if (x.is_view() || !used) continue;
    bufs.push_back({align_up(x.bytes()), first[t], last[t], static_cast<int>(t), -1});
  }
  for (size_t k = 0; k < order.size(); ++k) {
    const BLayer& l = p.layers[order[k]];
    if (l.scratch_bytes > 0) {
      bufs.push_back({align_up(l.scratch_bytes), static_cast<int64_t>(k), static_cast<int64_t>(join[k] - 1), -1, order[k]});
      p.activation_bytes += l.scratch_bytes;
    }
  }
  std::vector<size_t> idx(bufs.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return bufs[a].size > bufs[b].size; });
  std::vector<size_t> placed;
  int64_t arena = 0;
  for (size_t i : idx) {
    Buffer& b = bufs[i];
    // Busy ranges of buffers alive at the same time, by offset.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const Buffer& o = bufs[j];
      if (o.first <= b.last && b.first <= o.last) busy.push_back({o.offset, o.offset + o.size});
    }
    std::sort(busy.begin(), busy.end());
    int64_t off = 0;
    for (auto& [s, e] : busy) {
      if (off + b.size <= s) break;
      off = std::max(off, align_up(e));
    }
    b.offset = off;
    arena = std::max(arena, off + b.size);
    placed.push_back(i);
  }
  p.arena_bytes = arena;
  for (const Buffer& b : bufs) {
    if (b.tensor >= 0) p.tensors[b.tensor].offset = b.offset;
    else p.layers[b.layer].scratch_offset = b.offset;
  }
  for (BTensor& x : p.tensors)
    if (x.storage == rt::Storage::Arena && x.is_view())
      x.offset = p.tensors[x.root].offset + x.elem_offset * static_cast<int64_t>(dtype_size(x.dtype));
}

}  // namespace kestrel::bld
