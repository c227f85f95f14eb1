#include <algorithm>
#include <chrono>
#include <set>
#include <unordered_map>

#include "backend/cpu/kernel.h"
#include "kestrel/cpu_backend.h"

namespace kestrel {

CpuExecutor::CpuExecutor(const Graph& graph) : graph_(graph) {
  // Free each intermediate after its last reader so peak memory stays near the live set.
  std::unordered_map<std::string, size_t> last_use;
  for (size_t i = 0; i < graph.nodes.size(); ++i)
    for (auto& in : graph.nodes[i].inputs)
      if (!in.empty()) last_use[in] = i;
  const std::set<std::string> outs(graph.outputs.begin(), graph.outputs.end());
  release_after_.resize(graph.nodes.size());
  for (auto& [name, idx] : last_use) {
    const Value* v = graph.find(name);
    if (v && !v->is_constant() && !outs.count(name)) release_after_[idx].push_back(name);
  }
  for (auto& n : graph.nodes)
    KESTREL_CHECK(cpu::find_kernel(n.op), "the CPU backend has no kernel for '", n.op, "' (node '", n.name, "')");
}

std::vector<HostTensor> CpuExecutor::run(const std::vector<HostTensor>& inputs) const {
  return run(inputs, {}, nullptr);
}

std::vector<std::pair<std::string, double>> CpuExecutor::profile(const std::vector<HostTensor>& inputs, int runs) const {
  std::vector<double> total(graph_.nodes.size(), 0.0), ms;
  for (int r = 0; r < runs; ++r) {
    ms.clear();
    run(inputs, {}, nullptr, &ms);
    for (size_t i = 0; i < ms.size(); ++i) total[i] += ms[i];
  }
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < graph_.nodes.size(); ++i)
    out.emplace_back(graph_.nodes[i].name + " (" + graph_.nodes[i].op + ")", total[i] / std::max(runs, 1));
  return out;
}

std::vector<HostTensor> CpuExecutor::run(const std::vector<HostTensor>& inputs, const std::vector<std::string>& keep,
                                         std::vector<HostTensor>* kept, std::vector<double>* node_ms) const {
  KESTREL_CHECK(inputs.size() == graph_.inputs.size(), "expected ", graph_.inputs.size(), " inputs, got ", inputs.size());
  std::unordered_map<std::string, HostTensor> live;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Value& v = graph_.value(graph_.inputs[i]);
    KESTREL_CHECK(inputs[i].shape() == v.shape, "input '", v.name, "' expects shape ", shape_str(v.shape), ", got ",
                  shape_str(inputs[i].shape()));
    KESTREL_CHECK(inputs[i].dtype() == v.dtype, "input '", v.name, "' expects ", dtype_name(v.dtype), ", got ",
                  dtype_name(inputs[i].dtype()));
    live[v.name] = inputs[i];
  }
  const std::set<std::string> keep_set(keep.begin(), keep.end());
  std::unordered_map<std::string, HostTensor> kept_map;
  std::vector<const HostTensor*> args;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const Node& n = graph_.nodes[i];
    args.clear();
    for (auto& in : n.inputs) {
      if (in.empty()) {
        args.push_back(nullptr);
        continue;
      }
      auto it = live.find(in);
      if (it != live.end()) {
        args.push_back(&it->second);
      } else {
        const Value& v = graph_.value(in);
        KESTREL_CHECK(v.is_constant(), "node '", n.name, "' reads '", in, "' before it is computed");
        args.push_back(&*v.constant);
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<HostTensor> outs = cpu::eval_node(graph_, n, args);
    if (node_ms) node_ms->push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    for (size_t k = 0; k < n.outputs.size(); ++k) {
      if (n.outputs[k].empty()) continue;
      if (keep_set.count(n.outputs[k])) kept_map[n.outputs[k]] = outs[k];
      live[n.outputs[k]] = std::move(outs[k]);
    }
    for (auto& name : release_after_[i]) live.erase(name);
  }
  std::vector<HostTensor> result;
  for (auto& o : graph_.outputs) {
    auto it = live.find(o);
    if (it != live.end()) result.push_back(it->second);
    else result.push_back(*graph_.value(o).constant);  // an output that folded to a constant
  }
  if (kept)
    for (auto& k : keep) {
      auto it = kept_map.find(k);
      KESTREL_CHECK(it != kept_map.end(), "tensor '", k, "' is not computed by the graph");
      kept->push_back(it->second);
    }
  return result;
}

}  // namespace kestrel
