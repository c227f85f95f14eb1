#pragma once
// cuDNN's graph (backend) API for one FP16 convolution: the execution plans of the engine configs its
// heuristics rank first. The legacy cudnnConvolutionForward algorithms reach only a few of cuDNN's
// engines; on an H200 the ones the heuristics pick (Hopper tensor-core kernels) ran YOLO's 3x3
// convolutions 2-3x faster (torch's aten.convolution times in bench/RESULTS.md).
#include <cudnn.h>

#include <cstdint>
#include <vector>

#include "backend/cuda/conv_kernels.h"

namespace kestrel::cuda {

class CudnnBeConv {
 public:
  // x: the NHWC view of p (strides p.xs), w: OHWI dense, y: dense NHWC [N, K, OH, OW]; FP16 data,
  // FP32 compute; symmetric padding, group 1. Keeps at most max_plans plans (heuristic order),
  // skipping engines that compile at run time, are nondeterministic or reduce in reduced precision,
  // or need more than ws_limit bytes of workspace. Throws kestrel::Error on a cuDNN failure.
  CudnnBeConv(const ConvParams& p, cudnnHandle_t h, int max_plans, int64_t ws_limit);
  ~CudnnBeConv();
  CudnnBeConv(const CudnnBeConv&) = delete;
  CudnnBeConv& operator=(const CudnnBeConv&) = delete;

  int plans() const { return static_cast<int>(plans_.size()); }
  int64_t workspace(int i) const { return ws_.at(i); }
  // Pointers 16-byte aligned (the tensors are declared so); enqueued on the handle's stream.
  void execute(int i, cudnnHandle_t h, const void* x, const void* w, void* y, void* ws) const;

 private:
  std::vector<cudnnBackendDescriptor_t> owned_;
  std::vector<cudnnBackendDescriptor_t> plans_;
  std::vector<int64_t> ws_;
};

}  // namespace kestrel::cuda
