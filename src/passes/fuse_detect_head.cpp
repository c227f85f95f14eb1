// The YOLO detect heads' in-graph decode -> kestrel.DetectV8 / kestrel.DetectV5.
//
// Exporters write the decode as 30-60 small ops (reshapes, a DFL softmax + 1x1 conv or sigmoid +
// grid arithmetic, concats) whose exact form varies with the exporter version, so the pass does not
// pattern-match op by op. Instead, per graph output:
//   1. walk back from the output to the L 4-D tensors whose spatial size is imgsz / stride (the
//      per-level head maps); the nodes in between form the decode sub-graph, which nothing else may read;
//   2. read the head's parameters: nc and reg_max (v8) or na (v5) from the shapes, strides from
//      imgsz / H_i, and for v5 the anchors from the folded anchor-grid constants, by evaluating the
//      sub-graph at a known point (all-zero maps: sigmoid = 0.5, so wh = (2 * 0.5)^2 * anchor = anchor),
//      which works whatever shape the exporter gave those constants;
//   3. verify: run the original sub-graph and the fused op on the CPU backend on a random input and
//      accept only if they agree (relative L2 < 1e-5). Anything unexpected leaves the graph alone.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "kestrel/cpu_backend.h"
#include "kestrel/passes.h"
#include "passes/fusion_util.h"

namespace kestrel::passes {

namespace {
constexpr double kMaxRelL2 = 1e-5;
constexpr size_t kMaxDecodeNodes = 1000;  // a decode is tens of nodes; a runaway walk is not a head

struct Decode {
  std::string output;
  std::vector<size_t> nodes;      // sub-graph, ascending (= topological) order
  std::vector<std::string> maps;  // head maps, level order (ascending stride)
  std::vector<int64_t> strides;
};

// The network input the head's strides refer to: the first 4-D graph input.
std::optional<Shape> image_shape(const Graph& g) {
  for (auto& in : g.inputs) {
    const Value& v = g.value(in);
    if (v.shape.size() == 4) return v.shape;
  }
  return std::nullopt;
}

// Stride of a per-level head map [B, C, H, W] with H = imgsz_h / s and W = imgsz_w / s, or 0.
int64_t level_stride(const Value& v, const Shape& img) {
  const Shape& s = v.shape;
  if (v.is_constant() || s.size() != 4 || s[0] != img[0] || s[2] <= 0 || s[3] <= 0) return 0;
  if (img[2] % s[2] || img[3] % s[3] || img[2] / s[2] != img[3] / s[3]) return 0;
  const int64_t stride = img[2] / s[2];
  return stride > 1 ? stride : 0;
}

std::optional<Decode> find_decode(const Graph& g, const detail::Uses& uses, const std::string& out, const Shape& img) {
  Decode d;
  d.output = out;
  std::set<size_t> nodes;
  std::set<std::string> seen, maps;
  std::vector<std::string> stack = {out};
  while (!stack.empty()) {
    const std::string v = stack.back();
    stack.pop_back();
    if (v.empty() || !seen.insert(v).second) continue;
    const Value& val = g.value(v);
    if (val.is_constant()) continue;
    if (v != out && level_stride(val, img)) {
      maps.insert(v);
      continue;
    }
    const long p = uses.producer(v);
    if (p < 0 || nodes.size() >= kMaxDecodeNodes) return std::nullopt;  // reached a graph input
    if (!nodes.insert(static_cast<size_t>(p)).second) continue;
    for (auto& in : g.nodes[p].inputs) stack.push_back(in);
  }
  if (maps.empty()) return std::nullopt;
  // The sub-graph disappears: none of its values may be read outside it or be another graph output.
  for (size_t n : nodes)
    for (auto& o : g.nodes[n].outputs) {
      if (o.empty()) continue;
      if (o != out && uses.is_graph_output(o)) return std::nullopt;
      for (size_t r : uses.readers(o))
        if (!nodes.count(r)) return std::nullopt;
    }
  d.nodes.assign(nodes.begin(), nodes.end());
  d.maps.assign(maps.begin(), maps.end());
  std::sort(d.maps.begin(), d.maps.end(), [&](const std::string& a, const std::string& b) {
    return level_stride(g.value(a), img) < level_stride(g.value(b), img);
  });
  for (auto& m : d.maps) d.strides.push_back(level_stride(g.value(m), img));
  for (size_t i = 1; i < d.strides.size(); ++i)
    if (d.strides[i] == d.strides[i - 1]) return std::nullopt;  // two maps of one level: not a YOLO head
  return d;
}

// A stand-alone graph whose inputs are the head maps: the original decode, or the fused op.
Graph make_subgraph(const Graph& g, const Decode& d, const std::vector<Node>& nodes) {
  Graph s;
  s.name = "decode";
  for (auto& m : d.maps) {
    Value v = g.value(m);
    s.inputs.push_back(v.name);
    s.add_value(std::move(v));
  }
  for (const Node& n : nodes) {
    for (auto& in : n.inputs)
      if (!in.empty() && !s.has_value(in)) s.add_value(g.value(in));  // constants share storage
    for (auto& o : n.outputs)
      if (!o.empty() && !s.has_value(o)) s.add_value(Value{o, DType::F32, {}, false, std::nullopt});
    s.nodes.push_back(n);
  }
  s.outputs = {d.output};
  s.infer_shapes();
  return s;
}

HostTensor run_single(const Graph& s, const std::vector<HostTensor>& inputs) {
  CpuExecutor exec(s);
  return exec.run(inputs).at(0);
}

double rel_l2(const HostTensor& a, const HostTensor& b) {
  double num = 0, den = 0;
  const float *pa = a.data<float>(), *pb = b.data<float>();
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double e = static_cast<double>(pa[i]) - pb[i];
    num += e * e;
    den += static_cast<double>(pb[i]) * pb[i];
  }
  if (!std::isfinite(num)) return INFINITY;
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

std::vector<HostTensor> map_inputs(const Graph& g, const Decode& d, std::mt19937* rng) {
  std::vector<HostTensor> xs;
  // Logit-scale values: boxes' DFL bins and class logits of a trained head lie in a few units of 0.
  std::uniform_real_distribution<float> u(-4.f, 4.f);
  for (auto& m : d.maps) {
    HostTensor t(DType::F32, g.value(m).shape);
    for (float& v : t.span<float>()) v = rng ? u(*rng) : 0.f;
    xs.push_back(std::move(t));
  }
  return xs;
}

// The fused node for one family, with the parameters that the shapes (and, for v5, the probe) give.
std::optional<Node> fused_v8(const Graph& g, const Decode& d) {
  const Shape& y = g.value(d.output).shape;
  if (y.size() != 3) return std::nullopt;
  int64_t cells = 0;
  for (auto& m : d.maps) cells += g.value(m).shape[2] * g.value(m).shape[3];
  const int64_t nc = y[1] - 4;
  if (y[2] != cells || nc <= 0) return std::nullopt;
  int64_t reg_max = 0;
  for (auto& m : d.maps) {
    const int64_t c = g.value(m).shape[1] - nc;
    if (c <= 0 || c % 4 || (reg_max && c / 4 != reg_max)) return std::nullopt;
    reg_max = c / 4;
  }
  Node n;
  n.op = "kestrel.DetectV8";
  n.inputs = d.maps;
  n.outputs = {d.output};
  n.attrs.set("reg_max", reg_max);
  n.attrs.set("num_classes", nc);
  n.attrs.set("strides", d.strides);
  return n;
}

std::optional<Node> fused_v5(const Graph& g, const Decode& d, const Graph& original) {
  const Shape& y = g.value(d.output).shape;
  if (y.size() != 3 || y[2] <= 5) return std::nullopt;
  const int64_t no = y[2], nc = no - 5;
  int64_t na = 0, cells = 0;
  for (auto& m : d.maps) {
    const Shape& s = g.value(m).shape;
    if (s[1] % no || (na && s[1] / no != na)) return std::nullopt;
    na = s[1] / no;
    cells += s[2] * s[3];
  }
  if (na <= 0 || y[1] != na * cells) return std::nullopt;
  // Anchors: at all-zero maps every row's (w, h) is its anchor in pixels (see the file comment).
  const HostTensor probe = run_single(original, map_inputs(g, d, nullptr));
  std::vector<float> anchors;
  int64_t row = 0;
  for (auto& m : d.maps) {
    const int64_t hw = g.value(m).shape[2] * g.value(m).shape[3];
    for (int64_t a = 0; a < na; ++a) {
      const float* r = probe.data<float>() + (row + a * hw) * no;  // first cell of anchor a
      anchors.push_back(r[2]);
      anchors.push_back(r[3]);
    }
    row += na * hw;
  }
  Node n;
  n.op = "kestrel.DetectV5";
  n.inputs = d.maps;
  n.outputs = {d.output};
  n.attrs.set("num_classes", nc);
  n.attrs.set("num_anchors", na);
  n.attrs.set("strides", d.strides);
  n.attrs.set("anchors", anchors);
  return n;
}

// Runs the original decode and the candidate on the same random maps.
bool agrees(const Graph& g, const Decode& d, const Graph& original, const Node& fused, double* err) {
  try {
    const Graph candidate = make_subgraph(g, d, {fused});
    if (candidate.value(d.output).shape != g.value(d.output).shape) return false;
    std::mt19937 rng(20240611);
    const auto xs = map_inputs(g, d, &rng);
    *err = rel_l2(run_single(candidate, xs), run_single(original, xs));
    return *err < kMaxRelL2;
  } catch (const Error&) {
    return false;  // the candidate's attributes do not even fit the maps: not this family
  }
}
}  // namespace

int fuse_detect_head(Graph& g) {
  const std::optional<Shape> img = image_shape(g);
  if (!img) return 0;
  int fused = 0;
  const std::vector<std::string> outputs = g.outputs;
  for (const std::string& out : outputs) {
    const detail::Uses uses(g);
    const long p = uses.producer(out);
    if (p < 0 || g.value(out).dtype != DType::F32) continue;
    // Already decoded by a fused op (a second optimize run): nothing left to fuse.
    if (g.nodes[p].op == "kestrel.DetectV8" || g.nodes[p].op == "kestrel.DetectV5") continue;
    const std::optional<Decode> d = find_decode(g, uses, out, *img);
    if (!d) continue;
    std::vector<Node> sub_nodes;
    for (size_t n : d->nodes) sub_nodes.push_back(g.nodes[n]);
    std::optional<Graph> original;
    try {
      original = make_subgraph(g, *d, sub_nodes);
    } catch (const Error&) {
      continue;  // e.g. an op the CPU backend cannot run: nothing to verify against
    }
    std::optional<Node> node;
    double err = 0;
    for (int family = 0; family < 2 && !node; ++family) {
      std::optional<Node> cand;
      try {
        cand = family == 0 ? fused_v8(g, *d) : fused_v5(g, *d, *original);
      } catch (const Error&) {
        cand.reset();
      }
      if (cand && agrees(g, *d, *original, *cand, &err)) node = std::move(cand);
    }
    if (!node) continue;
    std::vector<std::string> names;
    for (size_t n : d->nodes) {
      detail::record_fused(*node, g.nodes[n]);
      names.push_back(g.nodes[n].name);
    }
    node->name = detail::fresh_node_name(g, detail::common_scope(names) + (node->op == "kestrel.DetectV8" ? "DetectV8" : "DetectV5"));
    node->attrs.set("kestrel_verified_rel_l2", static_cast<float>(err));
    // The output's producer is the last decode node (every other one is its ancestor): the maps exist there.
    std::vector<bool> dead(g.nodes.size(), false);
    for (size_t n : d->nodes) dead[n] = true;
    dead[p] = false;
    g.nodes[p] = std::move(*node);
    detail::erase_nodes(g, dead);
    ++fused;
  }
  if (fused) detail::finish(g);
  return fused;
}

}  // namespace kestrel::passes
