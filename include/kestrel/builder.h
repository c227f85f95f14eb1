#pragma once
// Kestrel's engine builder (TensorRT names): imports a model, fuses it, lowers it to a plan in
// channels-last layout for the chosen precision, times every layer's candidate kernels on the GPU
// (with a timing cache), packs activations into one arena and returns an Engine to run or serialize.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kestrel/graph.h"
#include "kestrel/runtime.h"

namespace kestrel {

// Enough for the detection head's branches (box and class at each of three scales) beside the trunk.
constexpr int kDefaultMaxAuxStreams = 6;

struct BuilderConfig {
  Precision precision = Precision::FP32;
  bool tf32 = false;                 // allow TF32 tensor cores for FP32 convolutions / matmuls
  int64_t batch = 0;                 // batch to bind (0: the model's own)
  // Batch profile (TensorRT's min/opt/max shapes, for the batch dimension): one engine that runs any
  // batch in [min_batch, max_batch], holding a plan tuned for min, opt, max and each power of two
  // between (another batch runs as slices through them, or padded into the plan that holds it: see
  // RuntimeConfig::batch_padding). max_batch 0: no profile, one
  // plan for `batch`. min_batch 0 means 1, opt_batch 0 means max_batch. Exclusive with `batch`.
  int64_t min_batch = 0, opt_batch = 0, max_batch = 0;
  int64_t imgsz = 0;                 // input size for models with dynamic spatial dims
  int64_t workspace_limit = 1ll << 30;  // bytes of scratch one layer's tactic may use
  // Read before and written after tuning (empty: none); an INT8 build under "prefer" keeps its per-layer
  // precision choice there too, so a rebuild of the same model tunes only the plan it chose.
  std::string timing_cache_path;
  // Folder of compiled cuDNN plans (INT8 convolutions compile at run time): "" the default
  // ($KESTREL_CUDNN_CACHE, else ~/.cache/kestrel/cudnn), "off" none.
  std::string cudnn_plan_cache;
  bool optimize = true;              // run the fusion passes (kestrel.Conv, SPPF, Attention, Detect*)
  // Streams besides the enqueue stream that independent branches of a plan may run on (TensorRT's
  // setMaxAuxStreams): 0 runs every layer in order on one stream.
  int max_aux_streams = kDefaultMaxAuxStreams;
  bool verbose = false;              // print per-layer tuning to stderr
  // Every layer runs its reference kernel (the one the others are validated against), untimed: for
  // checking accuracy questions, never for speed.
  bool reference_tactics = false;
  // INT8 layers run exactly as quantized (TensorRT's obey precision constraints). Off: a layer may run
  // above INT8 where that is faster, never below: the tuner may leave a quantization out (e.g. the
  // first convolution on the float image), and an INT8 conv whose FP16 form was timed clearly faster
  // runs in FP16 (each plan decides for its batch; the layer's precision reason says so).
  bool obey_precision_constraints = false;
  // Tactic sources (trtexec's --tacticSources): false leaves every tactic of that library out of the
  // search (cuDNN: cudnn_algo*, cudnnbe*, cudnn8_*; cuBLASLt: cublaslt_*). The reference kernels and
  // the project's own kernels are always candidates.
  bool cudnn_tactics = true;
  bool cublaslt_tactics = true;
  // Tests that check every kernel: each layer named here (BuildReport::candidates) runs the tactic
  // given, untimed, whatever timing would choose; with reference_tactics every other layer runs its
  // reference. A name that is no layer, or a tactic the layer does not offer, fails the build.
  std::map<std::string, std::string> forced_tactics;
};

// What the last build did (times in seconds).
struct BuildReport {
  double import_s = 0, optimize_s = 0, tune_s = 0, total_s = 0;
  int layers_tuned = 0, layers_from_cache = 0;
  int tactics_rejected = 0;  // candidates whose output disagreed with the reference kernel
  std::string optimize_summary;  // the fusion passes' rewrites, one line per pass
  std::vector<std::string> notes;
  // Every live layer's candidate tactics (those that fit the workspace, under the precision
  // constraints), its reference tactic first.
  struct LayerCandidates {
    std::string layer;
    std::vector<std::string> tactics;
  };
  std::vector<LayerCandidates> candidates;  // of the last plan built (the largest batch)
  std::vector<int64_t> plan_batches;         // one plan per batch
};

class Builder {
 public:
  explicit Builder(int device = 0);
  std::unique_ptr<Engine> build_from_onnx(const std::string& onnx_path, const BuilderConfig& config);
  // The graph must have inferred shapes; model_hash identifies the source in the engine header.
  // With a batch profile the graph is re-batched in memory (passes::rebatch) for each plan.
  std::unique_ptr<Engine> build(const Graph& graph, const BuilderConfig& config, const std::string& model_hash = "",
                                const std::string& model_name = "");
  const BuildReport& report() const { return report_; }

 private:
  int device_;
  BuildReport report_;
};

// FNV-1a 64 of a byte range, as 16 hex digits (the engine header's model hash).
std::string hash_bytes(const void* data, size_t size);

}  // namespace kestrel
