#pragma once
// Kestrel's lean CUDA runtime (libkestrel_runtime.so): loads engine files written by the builder and
// runs them. It holds no ONNX, protobuf or builder code. Names follow TensorRT:
//   Runtime        deserializes an engine (checks format version, GPU compute capability, integrity)
//   Engine         immutable: the plan and the weights, on the device once; shared by all contexts
//   ExecutionContext  one per thread or stream: its own activation arena, library handles, CUDA graph
// Every failure (bad file, wrong GPU, CUDA/cuDNN/cuBLAS error) is a kestrel::Error with one line that
// names the cause (and, for a kernel, the op and the node).
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kestrel/precision.h"
#include "kestrel/tensor.h"

// Same declaration as CUDA's driver_types.h, so this header needs no CUDA include.
typedef struct CUstream_st* cudaStream_t;

namespace kestrel {


struct EngineTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
};

// One executed layer as the engine records it (what `kestrel inspect FILE.engine` prints).
struct EngineLayerInfo {
  std::string name, op, tactic;
  std::vector<std::string> fused;      // the source ops this layer replaces (attr kestrel_fused)
  std::vector<std::string> inputs, outputs;  // "dtype layout shape" of each
  double time_ms = 0;                  // the tactic's time at build (0: not timed)
  int64_t scratch_bytes = 0;
  int stream = 0;  // 0: the enqueue stream; k > 0: auxiliary stream k (BuilderConfig::max_aux_streams)
  // INT8 engines: the precision the model gave the layer (int8, fp16) and why, e.g. the default
  // policy, a --layer-precision rule or the builder's timing ("" where none was given).
  std::string precision, precision_reason;
};

struct EngineInfo {
  uint32_t format_version = 0;
  std::string kestrel_version, gpu_name, model_name, model_hash, build_options;
  int cc_major = 0, cc_minor = 0;
  int cuda_runtime_version = 0, cudnn_version = 0;
  Precision precision = Precision::FP32;
  bool tf32 = false;
  int64_t batch = 0, imgsz = 0;  // batch: the largest the engine runs (max_batch)
  // The batch profile (TensorRT's optimization profile, for the batch dimension): the engine runs any
  // batch in [min_batch, max_batch]. It holds a plan tuned for each batch in `plans` (opt_batch among
  // them); another batch runs as consecutive slices through those plans, or padded into the smallest
  // that holds it (RuntimeConfig::batch_padding).
  int64_t min_batch = 0, opt_batch = 0, max_batch = 0;
  struct PlanSummary {
    int64_t batch = 0, layers = 0, arena_bytes = 0;
  };
  std::vector<PlanSummary> plans;
  std::map<std::string, std::string> metadata;  // the source model's (class names, strides, ...)
  std::vector<EngineTensorInfo> inputs, outputs;  // shapes at max_batch
  std::vector<EngineLayerInfo> layers;            // the plan for opt_batch
  int64_t arena_bytes = 0;        // peak activation memory after packing (one per context, shared by the plans)
  int64_t activation_bytes = 0;   // sum of all activation buffers before packing (no reuse)
  int64_t weight_bytes = 0;
  int64_t eliminated_copies = 0;  // Concat/Split/Slice/Reshape layers turned into views
};

class ExecutionContext;

// Settings of one execution context (a server sets them per context; the CLI maps KESTREL_CUDA_SYNC=1
// to sync_each_layer).
struct RuntimeConfig {
  bool cuda_graphs = true;       // capture each batch's enqueue once and replay it (one launch)
  bool sync_each_layer = false;  // synchronize after every layer, graphs off: pins an asynchronous fault on its layer
  // Folder of compiled cuDNN plans this context reads and adds to: "" the default ($KESTREL_CUDNN_CACHE,
  // else ~/.cache/kestrel/cudnn), "off" none.
  std::string cudnn_plan_cache;
  // A batch of a profile engine that has no plan of its own runs as slices through smaller plans, or
  // padded into the smallest plan that holds it (its images copied into staging buffers, the outputs
  // copied back). Auto chooses by the plans' tuned times; the outputs are the same either way.
  enum class BatchPadding { Auto, Never, Always };
  BatchPadding batch_padding = BatchPadding::Auto;
};

class Engine {
 public:
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineInfo& info() const;
  std::vector<uint8_t> serialize() const;
  void save(const std::string& path) const;

  // A new context (own arena and handles) sharing this engine's weights. The engine must outlive it.
  // Contexts are independent: N threads may each run their own context of one engine at once.
  std::unique_ptr<ExecutionContext> create_execution_context(const RuntimeConfig& config = {}) const;

  struct Impl;
  explicit Engine(std::shared_ptr<Impl> impl);
  const std::shared_ptr<Impl>& impl() const { return impl_; }

 private:
  std::shared_ptr<Impl> impl_;
};

class Runtime {
 public:
  explicit Runtime(int device = 0);
  // Throws kestrel::Error for a file that is not an engine, is truncated or corrupt, has another format
  // version, or was built for another compute capability (the message names both values).
  std::unique_ptr<Engine> deserialize(const void* data, size_t size) const;
  std::unique_ptr<Engine> load(const std::string& path) const;
  // Reads an engine file's header and layer table without a GPU (for inspect).
  static EngineInfo read_info(const void* data, size_t size);
  static EngineInfo read_info(const std::string& path);
  // True when the file starts with the engine magic.
  static bool is_engine_file(const std::string& path);

 private:
  int device_;
};

class ExecutionContext {
 public:
  ~ExecutionContext();
  ExecutionContext(const ExecutionContext&) = delete;
  ExecutionContext& operator=(const ExecutionContext&) = delete;

  // The batch the next enqueue runs: any in [info().min_batch, info().max_batch]; max_batch until set.
  // Every input's and output's leading dimension is this batch.
  void set_batch(int64_t batch);
  int64_t batch() const;

  // Named I/O, as TensorRT's setInputShape / getTensorShape / setTensorAddress / enqueueV3. Only the
  // batch of an input shape may differ from info()'s; an unknown name is an error listing the names.
  void set_input_shape(const std::string& name, const Shape& shape);
  Shape tensor_shape(const std::string& name) const;  // at the current batch
  void set_tensor_address(const std::string& name, void* address);
  // Enqueues the current batch with the addresses set by name on `stream` (nullptr: the context's own).
  void enqueue(cudaStream_t stream);

  // Device-pointer API. Inputs and outputs in the engine's order, as row-major device buffers of the
  // dtypes in info() and the current batch; enqueues on `stream` (nullptr: the context's own) and returns.
  void enqueue(const std::vector<const void*>& inputs, const std::vector<void*>& outputs, cudaStream_t stream);
  // Host convenience API: copies in, runs (at the inputs' batch), copies out, synchronizes.
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs);

  // With CUDA graphs on (the default), the first enqueue of a batch is captured into a graph and later
  // ones replay it (one launch for the whole network). New I/O addresses for a captured batch update
  // the graph's kernel parameters (a capture and cudaGraphExecUpdate, no new instantiation).
  struct GraphStats {
    int64_t captures = 0, instantiations = 0, updates = 0;
  };
  GraphStats graph_stats() const;
  // Per-layer GPU time of the plan for the current batch (one the engine was tuned for): the layers
  // captured as one CUDA graph with a timing event after each, replayed `runs` times; each layer's mean
  // in ms. A separate run from any timing of the whole network, since the events between layers
  // perturb it a little.
  std::vector<std::pair<std::string, double>> profile(const std::vector<const void*>& inputs,
                                                      const std::vector<void*>& outputs, int runs);

  void set_cuda_graphs(bool on);
  bool cuda_graphs() const;
  cudaStream_t stream() const;  // the context's own stream
  const EngineInfo& info() const;

  struct Impl;
  explicit ExecutionContext(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kestrel
