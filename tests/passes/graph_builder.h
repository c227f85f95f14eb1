#pragma once
// Hand-built graphs for the pass tests: a tiny builder, random tensors, and running a graph on the CPU
// reference backend.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kestrel/cpu_backend.h"
#include "kestrel/graph.h"

namespace kestrel::test {

inline HostTensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  HostTensor t(DType::F32, shape);
  for (float& v : t.span<float>()) v = u(rng);
  return t;
}

class GraphBuilder {
 public:
  std::string input(const std::string& name, const Shape& shape) {
    g_.add_value(Value{name, DType::F32, shape, true, std::nullopt});
    g_.inputs.push_back(name);
    return name;
  }
  std::string constant(const std::string& name, HostTensor t) {
    Value v{name, t.dtype(), t.shape(), true, t};
    g_.add_value(std::move(v));
    return name;
  }
  std::string random_constant(const std::string& name, const Shape& shape, float lo = -0.5f, float hi = 0.5f) {
    return constant(name, random_tensor(shape, seed_++, lo, hi));
  }
  // Adds a node; returns its outputs (named "<name>:k" unless given).
  std::vector<std::string> node_n(const std::string& op, std::vector<std::string> inputs, Attributes attrs,
                                  size_t num_outputs, const std::string& name = "") {
    Node n;
    n.op = op;
    n.name = name.empty() ? op + "_" + std::to_string(g_.nodes.size()) : name;
    n.inputs = std::move(inputs);
    n.attrs = std::move(attrs);
    for (size_t k = 0; k < num_outputs; ++k) {
      n.outputs.push_back(n.name + ":" + std::to_string(k));
      g_.add_value(Value{n.outputs.back(), DType::F32, {}, false, std::nullopt});
    }
    g_.nodes.push_back(n);
    return n.outputs;
  }
  std::string node(const std::string& op, std::vector<std::string> inputs, Attributes attrs = {},
                   const std::string& name = "") {
    return node_n(op, std::move(inputs), std::move(attrs), 1, name)[0];
  }
  // Conv2d with random weights (and bias), ONNX attributes.
  std::string conv(const std::string& x, int64_t cin, int64_t cout, int64_t k, int64_t stride = 1, int64_t group = 1,
                   bool bias = true, const std::string& name = "") {
    const std::string base = name.empty() ? "conv" + std::to_string(g_.nodes.size()) : name;
    const float scale = 1.f / std::sqrt(static_cast<float>(cin / group * k * k));
    std::vector<std::string> in = {x, random_constant(base + ".w", {cout, cin / group, k, k}, -scale, scale)};
    if (bias) in.push_back(random_constant(base + ".b", {cout}));
    Attributes a;
    a.set("kernel_shape", std::vector<int64_t>{k, k});
    a.set("strides", std::vector<int64_t>{stride, stride});
    a.set("pads", std::vector<int64_t>{k / 2, k / 2, k / 2, k / 2});
    a.set("dilations", std::vector<int64_t>{1, 1});
    a.set("group", group);
    return node("Conv", in, a, name);
  }
  std::string silu(const std::string& x) { return node("Mul", {x, node("Sigmoid", {x})}); }
  void output(const std::string& name) { g_.outputs.push_back(name); }
  Graph build() {
    g_.toposort();
    g_.infer_shapes();
    return g_;
  }
  Graph& graph() { return g_; }

 private:
  Graph g_;
  uint32_t seed_ = 1;
};

inline Attributes attrs(std::initializer_list<std::pair<const char*, Attribute>> kv) {
  Attributes a;
  for (auto& [k, v] : kv) a.set(k, v);
  return a;
}

inline std::vector<HostTensor> run_graph(const Graph& g, const std::vector<HostTensor>& inputs) {
  return CpuExecutor(g).run(inputs);
}

// Random inputs matching the graph's inputs.
inline std::vector<HostTensor> random_inputs(const Graph& g, uint32_t seed = 7, float lo = -2.f, float hi = 2.f) {
  std::vector<HostTensor> xs;
  for (auto& in : g.inputs) xs.push_back(random_tensor(g.value(in).shape, seed++, lo, hi));
  return xs;
}

inline double rel_l2(const HostTensor& a, const HostTensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double d = static_cast<double>(a.data<float>()[i]) - b.data<float>()[i];
    num += d * d;
    den += static_cast<double>(b.data<float>()[i]) * b.data<float>()[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

// Largest relative L2 over all outputs of the two graphs on the same inputs.
inline double max_output_error(const Graph& a, const Graph& b, const std::vector<HostTensor>& inputs) {
  const auto ya = run_graph(a, inputs), yb = run_graph(b, inputs);
  EXPECT_EQ(ya.size(), yb.size());
  double worst = 0;
  for (size_t i = 0; i < ya.size() && i < yb.size(); ++i) worst = std::max(worst, rel_l2(ya[i], yb[i]));
  return worst;
}

inline int count_op(const Graph& g, const std::string& op) {
  int n = 0;
  for (auto& node : g.nodes) n += node.op == op;
  return n;
}

inline std::map<std::string, int> op_histogram(const Graph& g) {
  std::map<std::string, int> h;
  for (auto& n : g.nodes) ++h[n.op];
  return h;
}

inline const Node* find_node(const Graph& g, const std::string& op) {
  for (auto& n : g.nodes)
    if (n.op == op) return &n;
  return nullptr;
}

inline std::vector<std::string> fused_names(const Node& n) {
  auto it = n.attrs.all().find("kestrel_fused");
  if (it == n.attrs.all().end()) return {};
  return std::get<std::vector<std::string>>(it->second);
}

}  // namespace kestrel::test
