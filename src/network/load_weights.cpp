// Pairs the Conv nodes of two graphs of one architecture in order and copies the weights across. Order
// is the only key both sides share reliably: names differ between exporters and our zoo, but the op
// order of a traced forward() does not (zoo_blocks.cpp follows it on purpose).
#include <string>
#include <vector>

#include "kestrel/zoo.h"

namespace kestrel {

namespace {
std::vector<const Node*> conv_nodes(const Graph& g) {
  std::vector<const Node*> v;
  for (const Node& n : g.nodes)
    if (n.op == "Conv") v.push_back(&n);
  return v;
}

const Value* const_input(const Graph& g, const Node& n, size_t i) {
  if (i >= n.inputs.size() || n.inputs[i].empty()) return nullptr;
  return g.find(n.inputs[i]);
}
}  // namespace

size_t load_weights_from(Graph& target, const Graph& source) {
  const auto tc = conv_nodes(target), sc = conv_nodes(source);
  if (tc.size() != sc.size())
    fail("load_weights_from: graph '", target.name, "' has ", tc.size(), " Conv nodes but the source '", source.name,
         "' has ", sc.size(), "; the architectures differ");
  // Validate everything first, so a mismatch leaves the target untouched.
  struct Copy {
    std::string target_value;
    HostTensor data;
  };
  std::vector<Copy> copies;
  for (size_t i = 0; i < tc.size(); ++i) {
    const Node &t = *tc[i], &s = *sc[i];
    for (size_t k : {size_t{1}, size_t{2}}) {
      const char* what = k == 1 ? "weight" : "bias";
      const Value* tv = const_input(target, t, k);
      const Value* sv = const_input(source, s, k);
      if (!tv && !sv) continue;
      if (!tv || !sv)
        fail("load_weights_from: Conv #", i, " ('", t.name, "' / source '", s.name, "'): only ",
             tv ? "the target" : "the source", " has a ", what);
      if (!tv->is_constant() || !sv->is_constant())
        fail("load_weights_from: Conv #", i, " ('", t.name, "' / source '", s.name, "'): the ", what,
             " is not a constant in the ", tv->is_constant() ? "source" : "target", " (a quantized graph?)");
      if (tv->shape != sv->shape)
        fail("load_weights_from: Conv #", i, " ('", t.name, "' / source '", s.name, "'): ", what, " shape ",
             shape_str(tv->shape), " vs ", shape_str(sv->shape), " in the source");
      HostTensor data = *sv->constant;
      if (data.dtype() != tv->dtype) data = data.cast(tv->dtype);  // e.g. an FP16 export into an FP32 graph
      copies.push_back({tv->name, std::move(data)});
    }
  }
  for (Copy& c : copies) target.value(c.target_value).constant = std::move(c.data);
  return copies.size();
}

}  // namespace kestrel
