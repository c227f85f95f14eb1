// BuildPlan -> rt::Plan: only the live layers and the tensors they (or the I/O slots) reference,
// renumbered, with final strides and byte offsets.
#include "builder/build_plan.h"

namespace kestrel::bld {

rt::Plan emit(const BuildPlan& p, rt::EngineHeader header) {
  rt::Plan out;
  out.header = std::move(header);
  std::vector<int32_t> remap(p.tensors.size(), -1);
  auto id = [&](int t) -> int32_t {
    if (t < 0) return -1;
    if (remap[t] < 0) {
      const BTensor& x = p.tensors[t];
      rt::PlanTensor pt;
      pt.name = x.name;
      pt.dtype = x.dtype;
      pt.shape = x.shape;
      pt.strides = x.strides;
      pt.storage = x.storage;
      pt.slot = x.slot;
      pt.offset = x.storage == rt::Storage::Arena || x.storage == rt::Storage::Weights ? x.offset : 0;
      pt.channels_last = x.channels_last;
      remap[t] = static_cast<int32_t>(out.tensors.size());
      out.tensors.push_back(std::move(pt));
    }
    return remap[t];
  };
  for (int t : p.inputs) out.inputs.push_back(id(t));
  for (int t : p.outputs) out.outputs.push_back(id(t));
  for (const BLayer& l : p.layers) {
    if (l.removed) continue;
    rt::PlanLayer pl;
    pl.name = l.name;
    pl.op = l.op;
    for (int t : l.in) pl.inputs.push_back(id(t));
    for (int t : l.out) pl.outputs.push_back(id(t));
    pl.attrs = l.attrs;
    pl.tactic = l.tactic.empty() ? "default" : l.tactic;
    pl.fused = l.fused;
    pl.time_ms = l.time_ms;
    pl.scratch_bytes = l.scratch_bytes;
    pl.scratch_offset = l.scratch_offset;
    pl.stream = l.stream;
    out.layers.push_back(std::move(pl));
  }
  out.arena_bytes = p.arena_bytes;
  out.activation_bytes = p.activation_bytes;
  out.eliminated_copies = p.eliminated;
  out.weights = p.weights;
  return out;
}

}  // namespace kestrel::bld
