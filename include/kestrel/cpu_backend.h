#pragma once
// The CPU reference backend: runs any Kestrel graph in FP32 (plus Q/DQ semantics), multithreaded.
// It is the oracle every other backend is compared with, so it favours exactness over speed.
#include <string>
#include <vector>

#include "kestrel/graph.h"

namespace kestrel {

class CpuExecutor {
 public:
  // The graph must have inferred shapes (import and the network API both do that).
  explicit CpuExecutor(const Graph& graph);

  // Inputs in the order of graph.inputs; returns the outputs in the order of graph.outputs.
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs) const;
  // Also keeps the named intermediate tensors (for debugging and calibration).
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs, const std::vector<std::string>& keep,
                              std::vector<HostTensor>* kept, std::vector<double>* node_ms = nullptr) const;

  // Mean wall time of each node over `runs` runs (a separate profiling pass: per-node timing perturbs
  // the whole-model figure, so benchmarks measure it apart).
  std::vector<std::pair<std::string, double>> profile(const std::vector<HostTensor>& inputs, int runs) const;

  const Graph& graph() const { return graph_; }

 private:
  const Graph& graph_;
  std::vector<std::vector<std::string>> release_after_;  // per node: values whose last use it is
};

}  // namespace kestrel
