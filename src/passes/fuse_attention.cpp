// The attention of YOLO11's C2PSA block (Ultralytics' Attention module) -> kestrel.Attention:
//   qkv [B, nh (2 kd + hd), H, W] -> Reshape [B, nh, 2 kd + hd, N] -> Split (q, k, v on axis 2)
//   S = MatMul(Transpose(q), k) * scale -> Softmax(-1) -> Y = MatMul(v, Transpose(S)) -> Reshape [B, nh hd, H, W]
// and the block's Reshape of v to [B, nh hd, H, W] (the positional conv's input) when there is one.
// Nine layers and a [B, nh, N, N] score tensor in memory become one op an engine can run with the
// scores on chip.
#include <cmath>

#include "ir/op_registry.h"
#include "kestrel/passes.h"
#include "passes/fusion_util.h"

namespace kestrel::passes {

namespace {

using Ints = std::vector<int64_t>;

bool swaps_last_two(const Graph& g, const Node& n) {
  if (n.op != "Transpose" || n.inputs.size() != 1 || n.outputs.size() != 1) return false;
  return g.value(n.inputs[0]).shape.size() == 4 && n.attrs.ints("perm", Ints{}) == Ints{0, 1, 3, 2};
}

// The node producing v when it is an `op` node (else null).
const Node* made_by(const Graph& g, const detail::Uses& uses, const std::string& v, const char* op) {
  const long p = uses.producer(v);
  if (p < 0) return nullptr;
  const Node& n = g.nodes[static_cast<size_t>(p)];
  return n.op == op ? &n : nullptr;
}

size_t index_of(const Graph& g, const Node* n) { return static_cast<size_t>(n - g.nodes.data()); }

// The value is read by exactly one node (once) and is not a graph output.
bool single_reader(const detail::Uses& uses, const std::string& v, size_t node) {
  return uses.readers(v).size() == 1 && uses.only_read_by(v, node);
}

// The one node reading v (once), when v has exactly one read and is not a graph output; else null.
const Node* sole_reader(const Graph& g, const detail::Uses& uses, const std::string& v) {
  const std::vector<size_t>& r = uses.readers(v);
  return r.size() == 1 && !uses.is_graph_output(v) ? &g.nodes[r[0]] : nullptr;
}

}  // namespace

int fuse_attention(Graph& g) {
  detail::Uses uses(g);
  std::vector<bool> dead(g.nodes.size(), false);
  int fused = 0;
  for (size_t si = 0; si < g.nodes.size(); ++si) {
    const Node& sm = g.nodes[si];
    if (sm.op != "Softmax" || dead[si] || sm.inputs.size() != 1) continue;
    const Shape& ss = g.value(sm.inputs[0]).shape;
    if (ss.size() != 4 || normalize_axis(sm.attrs.i("axis", -1), 4, sm) != 3) continue;
    // S * scale (a constant scalar), S = MatMul(Transpose(q), k).
    const Node* mul = made_by(g, uses, sm.inputs[0], "Mul");
    if (!mul || mul->inputs.size() != 2 || !single_reader(uses, mul->outputs[0], si)) continue;
    const int ci = detail::is_constant(g, mul->inputs[1]) ? 1 : detail::is_constant(g, mul->inputs[0]) ? 0 : -1;
    if (ci < 0 || g.value(mul->inputs[static_cast<size_t>(ci)]).constant->numel() != 1) continue;
    const float scale = g.value(mul->inputs[static_cast<size_t>(ci)]).constant->to_f32()[0];
    const Node* mm1 = made_by(g, uses, mul->inputs[static_cast<size_t>(1 - ci)], "MatMul");
    if (!mm1 || !single_reader(uses, mm1->outputs[0], index_of(g, mul))) continue;
    const Node* tq = made_by(g, uses, mm1->inputs[0], "Transpose");
    if (!tq || !swaps_last_two(g, *tq) || !single_reader(uses, tq->outputs[0], index_of(g, mm1))) continue;
    const Node* split = made_by(g, uses, tq->inputs[0], "Split");
    if (!split) continue;
    const Node& sp = *split;
    if (sp.outputs.size() != 3 || sp.outputs[0] != tq->inputs[0] || sp.outputs[1] != mm1->inputs[1]) continue;
    if (!single_reader(uses, sp.outputs[0], index_of(g, tq)) || !single_reader(uses, sp.outputs[1], index_of(g, mm1)))
      continue;
    const Node* r0 = made_by(g, uses, sp.inputs[0], "Reshape");
    if (!r0 || !single_reader(uses, r0->outputs[0], index_of(g, split))) continue;
    const Shape& qkv = g.value(r0->inputs[0]).shape;
    const Shape& heads = g.value(r0->outputs[0]).shape;
    if (qkv.size() != 4 || heads.size() != 4 || normalize_axis(sp.attrs.i("axis", 0), 4, sp) != 2) continue;
    const int64_t B = qkv[0], H = qkv[2], W = qkv[3], nh = heads[1];
    const int64_t kd = g.value(sp.outputs[0]).shape.at(2), hd = g.value(sp.outputs[2]).shape.at(2);
    if (heads != Shape{B, nh, 2 * kd + hd, H * W} || qkv[1] != nh * (2 * kd + hd) ||
        g.value(sp.outputs[1]).shape.at(2) != kd || ss != Shape{B, nh, H * W, H * W})
      continue;
    // Y = MatMul(v, Transpose(P)) -> Reshape [B, nh hd, H, W].
    const Node* pt = sole_reader(g, uses, sm.outputs[0]);
    if (!pt || !swaps_last_two(g, *pt)) continue;
    const Node* out = sole_reader(g, uses, pt->outputs[0]);
    if (!out || out->op != "MatMul" || out->inputs.size() != 2 || out->inputs[0] != sp.outputs[2] ||
        out->inputs[1] != pt->outputs[0])
      continue;
    const Node* y = sole_reader(g, uses, out->outputs[0]);
    const Shape image = {B, nh * hd, H, W};
    if (!y || y->op != "Reshape" || g.value(y->outputs[0]).shape != image) continue;
    const Node &t1 = *pt, &mm2 = *out, &r1 = *y;
    // v: read by the second MatMul and at most one Reshape to the image form (the positional conv's input).
    if (uses.is_graph_output(sp.outputs[2])) continue;
    const Node* r2 = nullptr;
    bool ok = true;
    for (size_t r : uses.readers(sp.outputs[2])) {
      const Node& n = g.nodes[r];
      if (&n == &mm2) continue;
      if (n.op == "Reshape" && !r2 && g.value(n.outputs[0]).shape == image) r2 = &n;
      else ok = false;
    }
    if (!ok) continue;

    std::vector<const Node*> parts = {r0, &sp, tq, mm1, mul, &sm, &t1, &mm2, &r1};
    if (r2) parts.push_back(r2);
    Node att;
    att.op = "kestrel.Attention";
    att.inputs = {r0->inputs[0]};
    att.outputs = {r1.outputs[0]};
    if (r2) att.outputs.push_back(r2->outputs[0]);
    att.attrs.set("num_heads", nh);
    att.attrs.set("key_dim", kd);
    att.attrs.set("head_dim", hd);
    att.attrs.set("scale", scale);
    std::vector<std::string> names;
    for (const Node* p : parts) names.push_back(p->name);
    att.name = detail::fresh_node_name(g, detail::common_scope(names) + "Attention");
    for (const Node* p : parts) detail::record_fused(att, *p);
    const size_t at = index_of(g, r0);  // the first of them: qkv is ready there, every reader comes later
    for (const Node* p : parts) dead[index_of(g, p)] = true;
    dead[at] = false;
    g.nodes[at] = std::move(att);
    ++fused;
  }
  return detail::apply_rewrites(g, dead, fused);
}

}  // namespace kestrel::passes
