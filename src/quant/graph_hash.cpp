// The model half of a calibration-cache key: a hash of what the graph computes (structure, attributes,
// weights), so the same model hashes the same whether it came from an ONNX file or the zoo, and any
// change to a weight or a layer invalidates the cache.
#include <algorithm>
#include <type_traits>

#include "kestrel/quant.h"
#include "quant/hash.h"
#include "quant/internal.h"

namespace kestrel::quant {

namespace {
void hash_tensor(detail::Fnv1a& h, const HostTensor& t) {
  h.u64(static_cast<uint64_t>(t.dtype()));
  h.u64(t.rank());
  for (int64_t d : t.shape()) h.u64(static_cast<uint64_t>(d));
  if (!t.empty()) h.bytes(t.raw(), t.nbytes());
}

void hash_attribute(detail::Fnv1a& h, const Attribute& a) {
  h.u64(a.index());
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, float>) h.bytes(&v, sizeof v);
        else if constexpr (std::is_same_v<T, std::string>) h.str(v);
        else if constexpr (std::is_same_v<T, HostTensor>) hash_tensor(h, v);
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          h.u64(v.size());
          for (auto& s : v) h.str(s);
        } else {
          h.u64(v.size());
          h.bytes(v.data(), v.size() * sizeof(v[0]));
        }
      },
      a);
}
}  // namespace

std::string graph_hash(const Graph& g) {
  detail::Fnv1a h;
  for (auto& in : g.inputs) {
    h.str(in);
    for (int64_t d : g.value(in).shape) h.u64(static_cast<uint64_t>(d));
  }
  for (auto& out : g.outputs) h.str(out);
  std::vector<std::string> constants;
  for (const Node& n : g.nodes) {
    h.str(n.op);
    h.str(n.name);
    h.u64(n.inputs.size());
    for (auto& in : n.inputs) {
      h.str(in);
      const Value* v = in.empty() ? nullptr : g.find(in);
      if (v && v->is_constant()) constants.push_back(in);
    }
    for (auto& out : n.outputs) h.str(out);
    for (auto& [k, a] : n.attrs.all()) {
      // What the quantizer itself writes must not change the identity of the model it calibrated.
      if (detail::is_precision_attr(k)) continue;
      h.str(k);
      hash_attribute(h, a);
    }
  }
  std::sort(constants.begin(), constants.end());
  constants.erase(std::unique(constants.begin(), constants.end()), constants.end());
  for (auto& c : constants) {
    h.str(c);
    hash_tensor(h, *g.value(c).constant);
  }
  return h.hex();
}

}  // namespace kestrel::quant
