#pragma once
// Internals of Engine and ExecutionContext, shared by the runtime's files and the builder (which
// builds an Engine from a plan it made in memory).
#include <cuda_runtime.h>

#include <memory>
#include <vector>

#include "backend/cuda/layer.h"
#include "kestrel/runtime.h"
#include "runtime/plan.h"

namespace kestrel {

struct Engine::Impl {
  rt::EngineFile file;  // the plans, ascending batch
  EngineInfo info;
  int device = 0;
  std::vector<int64_t> batches;   // each plan's batch
  struct PlanOnDevice {
    void* weights = nullptr;              // the plan's weights on the device (shared by contexts)
    std::vector<cuda::TensorMeta> metas;  // per plan tensor
  };
  std::vector<PlanOnDevice> on_device;  // per plan
  std::vector<void*> allocations;       // plans with the same weight bytes share one
  ~Impl();
};

namespace rt {
// Uploads the weights and derives tensor metadata; the file must be valid (deserialize checked it).
std::shared_ptr<Engine::Impl> make_engine_impl(EngineFile file, int device);
// The metadata layers see for a plan tensor.
cuda::TensorMeta tensor_meta(const PlanTensor& t);
// A LayerSpec for a plan layer whose tensors' metadata is `metas`.
cuda::LayerSpec layer_spec(const Plan& plan, const PlanLayer& l, const std::vector<cuda::TensorMeta>& metas);
}  // namespace rt

}  // namespace kestrel
