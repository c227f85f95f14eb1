#pragma once
// The timed loops behind `kestrel bench` and `kestrel compare`: warm-up, then at least `iterations`
// inferences and at least `duration_s` seconds, one record per inference.
#include <string>

#include "bench_stats.h"
#include "kestrel/graph.h"

namespace kestrel {
class Engine;
}

namespace kestrel::cli {

struct BenchOptions {
  double warmup_ms = 200;
  int iterations = 10;
  double duration_s = 3;
  bool cuda_graph = false;
  int streams = 1;
  bool data_transfers = true;
  bool spin_wait = false;
  bool profile = false;  // per-layer profile in a separate run
  bool progress = true;
  int64_t batch = 0;  // cuda: the batch to run, within the engine's profile (0: its largest)
};

BenchResult bench_cpu(const Graph& graph, const BenchOptions& options);
#ifdef KESTREL_HAS_CUDA
BenchResult bench_cuda(const Engine& engine, const BenchOptions& options);
#endif

// 2 x MACs of one inference of the graph (its bound batch).
double graph_flops(const Graph& g);

}  // namespace kestrel::cli
