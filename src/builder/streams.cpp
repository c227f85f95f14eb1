// Auxiliary streams for a plan (runtime/stream_schedule.h): the layers' true dependencies come from the
// tensors they read and write, as regions of the root tensors that own the storage (before the arena
// is packed, so reuse of memory creates none); each layer then gets a stream, and pack_arena keeps a
// buffer until every later layer follows all of its users.
#include "builder/build_plan.h"
#include "runtime/stream_schedule.h"

namespace kestrel::bld {

std::vector<int> live_layers(const BuildPlan& p) {
  std::vector<int> order;
  for (size_t i = 0; i < p.layers.size(); ++i)
    if (!p.layers[i].removed) order.push_back(static_cast<int>(i));
  return order;
}

std::vector<std::vector<int>> layer_dependencies(const BuildPlan& p, const std::vector<int>& order) {
  auto region = [&](int t) {
    const BTensor& x = p.tensors[t];
    return rt::tensor_region(x.root, x.elem_offset * static_cast<int64_t>(dtype_size(x.dtype)), x.dtype, x.shape, x.strides);
  };
  std::vector<rt::LayerAccess> access;
  for (int i : order) {
    const BLayer& l = p.layers[i];
    rt::LayerAccess a;
    for (int t : l.in)
      if (t >= 0 && p.tensors[t].storage != rt::Storage::Weights) a.reads.push_back(region(t));
    for (int t : l.out) a.writes.push_back(region(t));
    access.push_back(std::move(a));
  }
  return rt::memory_hazards(access);
}

void assign_streams(BuildPlan& p, int max_aux_streams) {
  const std::vector<int> order = live_layers(p);
  const std::vector<int> stream = rt::assign_streams(layer_dependencies(p, order), 1 + max_aux_streams);
  for (size_t k = 0; k < order.size(); ++k) p.layers[order[k]].stream = stream[k];
}

}  // namespace kestrel::bld
