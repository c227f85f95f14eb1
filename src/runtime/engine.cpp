// Engine (the plan and its device weights) and Runtime (loading engine files).
#include <cuda_runtime.h>

#include <cstring>
#include <fstream>

#include "backend/cuda/check.h"
#include "runtime/device.h"
#include "runtime/engine_impl.h"
#include "util/file_io.h"

namespace kestrel {

Engine::Impl::~Impl() {
  for (void* p : allocations) cudaFree(p);
}

namespace rt {

cuda::TensorMeta tensor_meta(const PlanTensor& t) {
  cuda::TensorMeta m;
  m.dtype = t.dtype;
  m.shape = t.shape;
  m.strides = t.strides;
  m.channels_last = t.channels_last;
  return m;
}

cuda::LayerSpec layer_spec(const Plan& plan, const PlanLayer& l, const std::vector<cuda::TensorMeta>& metas) {
  return cuda::make_layer_spec(l.name, l.op, l.attrs, l.inputs, l.outputs, metas, plan.header.precision, plan.header.tf32);
}

std::shared_ptr<Engine::Impl> make_engine_impl(EngineFile file, int device) {
  auto impl = std::make_shared<Engine::Impl>();
  impl->device = device;
  KCUDA(cudaSetDevice(device));
  for (size_t k = 0; k < file.plans.size(); ++k) {
    const Plan& plan = file.plans[k];
    Engine::Impl::PlanOnDevice d;
    for (const PlanTensor& t : plan.tensors) d.metas.push_back(tensor_meta(t));
    for (size_t j = 0; j < k && !d.weights; ++j)
      if (file.plans[j].weights == plan.weights) d.weights = impl->on_device[j].weights;
    if (!d.weights && !plan.weights.empty()) {
      KCUDA(cudaMalloc(&d.weights, plan.weights.size()));
      impl->allocations.push_back(d.weights);
      KCUDA(cudaMemcpy(d.weights, plan.weights.data(), plan.weights.size(), cudaMemcpyHostToDevice));
    }
    impl->on_device.push_back(std::move(d));
    impl->batches.push_back(plan.header.batch);
  }
  impl->info = engine_info(file);
  impl->file = std::move(file);
  return impl;
}

}  // namespace rt

Engine::Engine(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() = default;
const EngineInfo& Engine::info() const { return impl_->info; }
std::vector<uint8_t> Engine::serialize() const { return rt::serialize_engine(impl_->file); }

void Engine::save(const std::string& path) const {
  const std::vector<uint8_t> bytes = serialize();
  util::write_file(path, bytes.data(), bytes.size());
}

Runtime::Runtime(int device) : device_(device) {}

std::unique_ptr<Engine> Runtime::deserialize(const void* data, size_t size) const {
  const auto* p = static_cast<const uint8_t*>(data);
  const rt::DeviceInfo dev = rt::query_device(device_);
  // The compute capability is compared before the checksum, so a foreign engine is named as such.
  if (size >= 20 && std::memcmp(p, rt::kEngineMagic, 8) == 0) {
    uint32_t version;
    int32_t major, minor;
    std::memcpy(&version, p + rt::kOffsetFormatVersion, 4);
    std::memcpy(&major, p + rt::kOffsetCcMajor, 4);
    std::memcpy(&minor, p + rt::kOffsetCcMinor, 4);
    if (version == rt::kFormatVersion && (major != dev.cc_major || minor != dev.cc_minor))
      fail("this engine was built for compute capability ", major, ".", minor, ", but this GPU (", dev.name,
           ") has compute capability ", dev.cc_major, ".", dev.cc_minor, "; rebuild the engine on this GPU");
  }
  return std::make_unique<Engine>(rt::make_engine_impl(rt::deserialize_engine(data, size), device_));
}

std::unique_ptr<Engine> Runtime::load(const std::string& path) const {
  const std::vector<char> bytes = util::read_file(path);
  try {
    return deserialize(bytes.data(), bytes.size());
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

EngineInfo Runtime::read_info(const void* data, size_t size) { return rt::engine_info(rt::deserialize_engine(data, size)); }

EngineInfo Runtime::read_info(const std::string& path) {
  const std::vector<char> bytes = util::read_file(path);
  try {
    return read_info(bytes.data(), bytes.size());
  } catch (const Error& e) {
    fail(path, ": ", e.what());
  }
}

bool Runtime::is_engine_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  return f.read(magic, 8) && std::memcmp(magic, rt::kEngineMagic, 8) == 0;
}

}  // namespace kestrel
