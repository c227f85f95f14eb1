#include "backend/cuda/graph_timing.h"

#include "backend/cuda/check.h"

namespace kestrel::cuda {

namespace {
// A timing event as a graph node: recorded under capture with the external flag, it becomes an event
// record node instead of a capture-internal dependency.
void record_mark(std::vector<cudaEvent_t>& marks, cudaStream_t s) {
  cudaEvent_t e = nullptr;
  KCUDA(cudaEventCreate(&e));
  marks.push_back(e);
  KCUDA(cudaEventRecordWithFlags(e, s, cudaEventRecordExternal));
}
}  // namespace

TimedGraph::TimedGraph(cudaStream_t s, const std::function<void(cudaStream_t, const std::function<void()>&)>& enqueue)
    : s_(s) {
  KCUDA(cudaStreamBeginCapture(s_, cudaStreamCaptureModeRelaxed));
  cudaGraph_t g = nullptr;
  try {
    record_mark(marks_, s_);
    enqueue(s_, [&] { record_mark(marks_, s_); });
  } catch (...) {
    cudaStreamEndCapture(s_, &g);
    if (g) cudaGraphDestroy(g);
    cudaGetLastError();  // a failed capture is not a sticky error
    release();
    throw;
  }
  cudaError_t e = cudaStreamEndCapture(s_, &g);
  if (e == cudaSuccess) e = cudaGraphInstantiate(&exec_, g, 0);
  if (g) cudaGraphDestroy(g);
  if (e != cudaSuccess) {
    cudaGetLastError();
    release();
    KCUDA(e);
  }
}

TimedGraph::~TimedGraph() { release(); }

void TimedGraph::release() {
  if (exec_) cudaGraphExecDestroy(exec_);
  exec_ = nullptr;
  for (cudaEvent_t e : marks_) cudaEventDestroy(e);
  marks_.clear();
}

std::vector<float> TimedGraph::replay() {
  KCUDA(cudaGraphLaunch(exec_, s_));
  KCUDA(cudaEventSynchronize(marks_.back()));
  std::vector<float> ms(marks_.size() - 1, 0.f);
  for (size_t i = 0; i + 1 < marks_.size(); ++i) KCUDA(cudaEventElapsedTime(&ms[i], marks_[i], marks_[i + 1]));
  return ms;
}

}  // namespace kestrel::cuda
