// Requantize folding: an INT8 conv whose fp16 output is read only by one kestrel.QuantizeInt8 writes
// the int8 codes itself (attr out_scale), so INT8 tensors flow between INT8 layers without an fp16
// round trip. Exact: the conv's epilogue rounds to fp16 first and quantizes that value, which is what
// the separate quantize layer computed from the stored fp16 tensor (quant.h's contract).
#include <map>

#include "builder/build_plan.h"

namespace kestrel::bld {

int fold_requantize(BuildPlan& p) {
  std::map<int, int> readers, producer;
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const BLayer& l = p.layers[i];
    if (l.removed) continue;
    for (int t : l.in)
      if (t >= 0) ++readers[t];
    for (int t : l.out)
      if (t >= 0) producer[t] = static_cast<int>(i);
  }
  // The INT8 conv writing `t` when t is an fp16 channels-last arena tensor only one layer reads.
  auto sole_int8_producer = [&](int t) -> BLayer* {
    auto pr = producer.find(t);
    if (pr == producer.end() || readers[t] != 1) return nullptr;
    BLayer& conv = p.layers[pr->second];
    const BTensor& fp = p.tensors[t];
    if (!is_int8_conv_op(conv.op) || conv.attrs.has("out_scale") || fp.storage != rt::Storage::Arena || fp.is_view() ||
        !fp.channels_last || fp.dtype != DType::F16)
      return nullptr;
    return &conv;
  };
  int folded = 0;
  for (BLayer& q : p.layers) {
    if (q.removed || q.op != "kestrel.QuantizeInt8") continue;
    BLayer* conv = sole_int8_producer(q.in.at(0));
    if (!conv) continue;
    conv->attrs.set("out_scale", q.attrs.f("scale"));
    conv->out[0] = q.out.at(0);
    conv->fused.push_back("QuantizeLinear");
    q.removed = true;
    ++folded;
  }
  return folded;
}

}  // namespace kestrel::bld
