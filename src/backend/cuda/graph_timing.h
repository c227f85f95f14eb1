#pragma once
// GPU time of enqueued work as the engine runs it: captured into a CUDA graph with timing events as
// graph nodes between its parts, then replayed. Events recorded on a stream directly would count the
// host's launch cost wherever it exceeds the GPU's work (a cuDNN execute's set-up on a small layer, a
// layer timed alone with nothing queued ahead of it) -- a cost the engine's graph replay never pays.
#include <cuda_runtime.h>

#include <functional>
#include <vector>

namespace kestrel::cuda {

class TimedGraph {
 public:
  // `enqueue(stream, mark)` enqueues the work on `stream` and calls `mark()` after each part to be
  // timed. It runs once, under stream capture (relaxed mode, as the engine captures); an exception from
  // it ends the capture and propagates. `s` must not be the legacy default stream.
  TimedGraph(cudaStream_t s, const std::function<void(cudaStream_t, const std::function<void()>&)>& enqueue);
  ~TimedGraph();
  TimedGraph(const TimedGraph&) = delete;
  TimedGraph& operator=(const TimedGraph&) = delete;

  // One replay, synchronized: the milliseconds of each part (from the graph's start to the first mark,
  // then from mark to mark).
  std::vector<float> replay();
  int parts() const { return static_cast<int>(marks_.size()) - 1; }

 private:
  void release();  // the graph and the events, on failure or destruction

  cudaStream_t s_;
  std::vector<cudaEvent_t> marks_;  // marks_[0] opens the graph
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace kestrel::cuda
