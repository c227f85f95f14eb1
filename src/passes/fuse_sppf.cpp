// SPPF (YOLOv5/v8/11): y1 = m(x), y2 = m(y1), y3 = m(y2), Concat([x, y1, y2, y3], channels) with
// m = MaxPool(k, stride 1, pad k/2) -> kestrel.SPPF. One op lets an engine pool a plane three times
// while it is on chip and write the concatenation directly.
#include "ir/op_registry.h"
#include "kestrel/passes.h"
#include "passes/fusion_util.h"

namespace kestrel::passes {

namespace {
// MaxPool(k x k, stride 1, pad k/2 on every side, no dilation) of a 4-D float tensor: the
// size-preserving pool SPPF chains. Returns k, or 0 when the node is anything else.
int64_t same_pool_kernel(const Graph& g, const Node& n) {
  if (n.op != "MaxPool" || n.inputs.size() != 1 || n.outputs.size() != 1) return 0;  // no Indices output
  const Value& x = g.value(n.inputs[0]);
  if (x.shape.size() != 4 || x.dtype != DType::F32) return 0;
  if (n.attrs.s("auto_pad", "NOTSET") != "NOTSET" || n.attrs.i("storage_order", 0) != 0) return 0;
  const auto k = n.attrs.ints("kernel_shape", std::vector<int64_t>{});
  if (k.size() != 2 || k[0] != k[1] || k[0] % 2 == 0) return 0;
  const int64_t p = k[0] / 2;
  using V = std::vector<int64_t>;
  if (n.attrs.ints("strides", V{1, 1}) != V{1, 1} || n.attrs.ints("dilations", V{1, 1}) != V{1, 1} ||
      n.attrs.ints("pads", V{0, 0, 0, 0}) != V{p, p, p, p})
    return 0;
  return k[0];
}
}  // namespace

int fuse_sppf(Graph& g) {
  detail::Uses uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int fused = 0;
  for (size_t ci = 0; ci < g.nodes.size(); ++ci) {
    const Node& cat = g.nodes[ci];
    if (cat.op != "Concat" || cat.inputs.size() != 4 || cat.outputs.size() != 1) continue;
    const Value& x = g.value(cat.inputs[0]);
    if (x.shape.size() != 4 || x.is_constant() || normalize_axis(cat.attrs.i("axis"), 4, cat) != 1) continue;
    // Walk the chain backwards from the last pooled map: input i must be the pool of input i - 1.
    std::vector<size_t> pools;
    int64_t kernel = 0;
    bool ok = true;
    for (size_t i = 1; i < 4 && ok; ++i) {
      const long p = uses.producer(cat.inputs[i]);
      ok = p >= 0 && !dead[p];
      if (!ok) break;
      const Node& pool = g.nodes[p];
      const int64_t k = same_pool_kernel(g, pool);
      ok = k > 0 && (kernel == 0 || k == kernel) && pool.inputs[0] == cat.inputs[i - 1];
      kernel = k;
      // The intermediate pools vanish: only the chain and the Concat may read them.
      if (ok && !uses.is_graph_output(pool.outputs[0])) {
        for (size_t r : uses.readers(pool.outputs[0])) {
          const bool next_pool = i < 3 && r == static_cast<size_t>(uses.producer(cat.inputs[i + 1]));
          if (r != ci && !next_pool) ok = false;
        }
      } else {
        ok = false;
      }
      pools.push_back(static_cast<size_t>(p));
    }
    if (!ok) continue;
    Node sppf;
    sppf.op = "kestrel.SPPF";
    sppf.inputs = {cat.inputs[0]};
    sppf.outputs = cat.outputs;
    sppf.attrs.set("kernel", kernel);
    std::vector<std::string> names = {cat.name};
    for (size_t p : pools) names.push_back(g.nodes[p].name);
    sppf.name = detail::fresh_node_name(g, detail::common_scope(names) + "SPPF");
    for (size_t p : pools) {
      detail::record_fused(sppf, g.nodes[p]);
      dead[p] = true;
    }
    detail::record_fused(sppf, cat);
    g.nodes[ci] = std::move(sppf);  // at the Concat's place: x is ready there
    ++fused;
  }
  return detail::apply_rewrites(g, dead, fused);
}

}  // namespace kestrel::passes
