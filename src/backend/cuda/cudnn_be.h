#pragma once
// cuDNN's graph (backend) API: convolutions as operation graphs, run by the execution plans of the
// engine configs its heuristics rank first. The legacy cudnnConvolutionForward algorithms reach only a
// few of cuDNN's engines; on an H200 the ones the heuristics pick (Hopper tensor-core kernels) ran
// YOLO's 3x3 convolutions 2-3x faster (torch's aten.convolution times in bench/RESULTS.md), and INT8
// convolutions exist only here, as run-time compiled kernels with the epilogue fused
// (bench/cudnn_int8_probe.cpp).
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend/cuda/conv_kernels.h"

namespace kestrel::cuda {

// NHWC element strides of a dense [N, C, H, W] tensor.
void dense_nhwc(const int64_t (&d)[4], int64_t (&s)[4]);

// One operation graph and the plans of its heuristics' engine configs. Build the graph (tensors, ops),
// then finalize(); plans are numbered in heuristic order among the configs the filter keeps.
class CudnnGraph {
 public:
  using Desc = cudnnBackendDescriptor_t;
  CudnnGraph() = default;
  ~CudnnGraph();
  CudnnGraph(const CudnnGraph&) = delete;
  CudnnGraph& operator=(const CudnnGraph&) = delete;

  // A rank-4 tensor [N, C, H, W] with the given element strides; 16-byte aligned data.
  Desc tensor(int64_t uid, cudnnDataType_t dt, const int64_t (&dims)[4], const int64_t (&strides)[4],
              bool is_virtual = false);
  // y = conv(x, w) with p's window (symmetric padding, group 1), accumulated in `compute`.
  void conv(const ConvParams& p, Desc x, Desc w, Desc y, cudnnDataType_t compute);
  // y = mode(x[, b]) computed in float (b broadcasts, e.g. a per-channel [1, K, 1, 1] tensor).
  void pointwise(cudnnPointwiseMode_t mode, Desc x, Desc b, Desc y);

  // Keeps at most max_plans engine configs, skipping nondeterministic and reduced-precision engines,
  // and run-time compiled ones unless allowed. Eager: finalizes each plan now and keeps only those
  // that finalize with at most ws_limit bytes of workspace. Lazy: build(i) finalizes plan i on first
  // use (run-time compiled engines compile there: 20-400 ms each, or restore the plan from
  // cudnn_plan_cache.h's disk cache). Throws kestrel::Error on failure.
  void finalize(cudnnHandle_t h, int max_plans, int64_t ws_limit, bool runtime_compiled, bool eager);
  int plans() const { return static_cast<int>(cfgs_.size()); }
  // Finalizes plan i if it is not yet; throws kestrel::Error when it cannot be built or needs more
  // than the workspace limit.
  void build(int i, cudnnHandle_t h);
  // Compiles plan i into the disk cache unless it is there already (then nothing is finalized): how
  // the builder's threads prepare run-time compiled plans for the tuner.
  void compile_into_cache(int i, cudnnHandle_t h);
  int64_t workspace(int i) const;
  // Runs plan i (built) on the handle's stream; ptrs[j] is the data of tensor uids[j], all 16-byte
  // aligned.
  void execute(int i, cudnnHandle_t h, const int64_t* uids, void* const* ptrs, int n, void* ws) const;

 private:
  Desc make(cudnnBackendDescriptorType_t t);
  std::string plan_key(int i) const { return sig_ + "| plan " + std::to_string(i); }  // in the plan cache
  std::vector<Desc> owned_, ops_;
  std::map<Desc, int64_t> uid_;  // tensor descriptor -> its uid, for the signature
  std::string sig_;               // the graph as text: the plan cache's key
  bool cache_plans_ = false;      // run-time compiled plans go through the disk cache
  std::vector<Desc> cfgs_, plans_;  // plans_[i] null until built
  std::vector<int64_t> ws_;
  int64_t ws_limit_ = 0;
};

// One FP16 convolution: x the NHWC view of p (strides p.xs), w OHWI dense, y dense NHWC
// [N, K, OH, OW]; FP32 compute. Up to max_plans precompiled (not run-time compiled) plans, built now.
class CudnnBeConv {
 public:
  CudnnBeConv(const ConvParams& p, cudnnHandle_t h, int max_plans, int64_t ws_limit);
  int plans() const { return g_.plans(); }
  int64_t workspace(int i) const { return g_.workspace(i); }
  void execute(int i, cudnnHandle_t h, const void* x, const void* w, void* y, void* ws) const;

 private:
  CudnnGraph g_;
};

// One INT8 convolution with the ConvInt8 epilogue fused as pointwise nodes (run-time compiled
// engines): y = act(conv(x, w) * scale + bias) + r, written as fp16 or as int8 codes of y / out_scale
// (cuDNN's float -> int8 conversion rounds to nearest and saturates; the builder validates the plans
// against the reference kernel). x int8 with strides p.xs, w int8 OHWI, scale and bias float32 [K],
// r fp16 with strides p.rs, y with strides p.ys. act: kActNone, kActRelu or kActSilu (supports()).
// An int8 residual (codes r_q, scale s_r) joins the chain as ((v / s_r) + r_q) * s_r: cuDNN's
// runtime fusion takes a chain of pointwise nodes after the conv, and this keeps it one chain.
class CudnnInt8Conv {
 public:
  enum class Residual { None, Half, Int8 };
  // Device floats the graph reads: 1 / out_scale (int8 output), 1 / s_r and s_r (int8 residual).
  struct Scalars {
    const float* inv_out_scale = nullptr;
    const float* inv_r_scale = nullptr;
    const float* r_scale = nullptr;
  };
  // The layer's form cuDNN's fused plans take (including 16-byte pixel strides for x, y and r).
  static bool supports(const ConvParams& p, Residual res, bool int8_out);
  CudnnInt8Conv(const ConvParams& p, cudnnHandle_t h, bool has_bias, Residual res, bool int8_out, int max_plans,
                int64_t ws_limit);
  int plans() const { return g_.plans(); }
  void build(int i, cudnnHandle_t h) { g_.build(i, h); }
  void compile_into_cache(int i, cudnnHandle_t h) { g_.compile_into_cache(i, h); }
  int64_t workspace(int i) const { return g_.workspace(i); }
  void execute(int i, cudnnHandle_t h, const void* x, const void* w, const float* scale, const float* bias,
               const void* r, const Scalars& scalars, void* y, void* ws) const;

 private:
  CudnnGraph g_;
  bool has_bias_, int8_out_;
  Residual res_;
};

}  // namespace kestrel::cuda
