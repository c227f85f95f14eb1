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

#include "kestrel/tensor.h"

// Same declaration as CUDA's driver_types.h, so this header needs no CUDA include.
typedef struct CUstream_st* cudaStream_t;

namespace kestrel {

// INT8: INT8 convolutions where the model's Q/DQ (or the calibration) says so, FP16 elsewhere.
enum class Precision : uint8_t { FP32 = 0, FP16 = 1, INT8 = 2 };
const char* precision_name(Precision p);

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
};

struct EngineInfo {
  uint32_t format_version = 0;
  std::string kestrel_version, gpu_name, model_name, model_hash, build_options;
  int cc_major = 0, cc_minor = 0;
  int cuda_runtime_version = 0, cudnn_version = 0;
  Precision precision = Precision::FP32;
  bool tf32 = false;
  int64_t batch = 0, imgsz = 0;
  std::map<std::string, std::string> metadata;  // the source model's (class names, strides, ...)
  std::vector<EngineTensorInfo> inputs, outputs;
  std::vector<EngineLayerInfo> layers;
  int64_t arena_bytes = 0;        // peak activation memory after packing (one per context)
  int64_t activation_bytes = 0;   // sum of all activation buffers before packing (no reuse)
  int64_t weight_bytes = 0;
  int64_t eliminated_copies = 0;  // Concat/Split/Slice/Reshape layers turned into views
};

class ExecutionContext;

class Engine {
 public:
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineInfo& info() const;
  std::vector<uint8_t> serialize() const;
  void save(const std::string& path) const;

  // A new context (own arena and handles) sharing this engine's weights. The engine must outlive it.
  std::unique_ptr<ExecutionContext> create_execution_context() const;

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

  // Device-pointer API. Inputs and outputs in the engine's order, as float32 row-major device buffers
  // of the shapes in info(); enqueues on `stream` (nullptr: the context's own stream) and returns.
  void enqueue(const std::vector<const void*>& inputs, const std::vector<void*>& outputs, cudaStream_t stream);
  // Host convenience API: copies in, runs, copies out, synchronizes.
  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs);

  // With CUDA graphs on (the default), the first enqueue with a given set of I/O pointers is captured
  // into a graph and later ones replay it (one launch for the whole network).
  // Per-layer GPU time: runs the layers one by one (no CUDA graph) with an event pair around each,
  // `runs` times, and returns each layer's mean in ms. A separate run from any timing of the whole
  // network, since the events between layers perturb it.
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
