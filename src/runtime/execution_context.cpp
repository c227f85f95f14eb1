// ExecutionContext: one activation arena, one set of library handles and the layers of one engine,
// bound to that arena; I/O pointers are patched in per enqueue. With CUDA graphs on, the whole
// enqueue is captured once per set of I/O pointers and replayed (one launch per inference).
// KESTREL_CUDA_SYNC=1 synchronizes after every layer (graphs off) to pin an asynchronous fault on the
// layer that caused it.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/check.h"
#include "runtime/engine_impl.h"

namespace kestrel {

namespace {
struct Patch {
  size_t layer;
  bool output;   // patch io.out (else io.in)
  size_t index;  // position in io.in / io.out
  int32_t slot;  // I/O slot
};

char* at(void* base, int64_t off) { return static_cast<char*>(base) + off; }
}  // namespace

struct ExecutionContext::Impl {
  std::shared_ptr<Engine::Impl> engine;
  cudaStream_t stream = nullptr;
  cuda::Handles handles;
  void* arena = nullptr;
  std::vector<std::unique_ptr<cuda::Layer>> layers;
  std::vector<cuda::LayerIO> ios;
  std::vector<Patch> patches;
  std::vector<void*> host_in, host_out;  // device buffers of the host API
  bool graphs = true, sync_each = false, warmed = false;
  cudaGraphExec_t graph = nullptr;
  std::vector<const void*> graph_key;

  ~Impl() {
    if (graph) cudaGraphExecDestroy(graph);
    for (void* p : host_in) cudaFree(p);
    for (void* p : host_out) cudaFree(p);
    layers.clear();  // descriptors before handles
    if (handles.cudnn) cudnnDestroy(handles.cudnn);
    if (handles.lt) cublasLtDestroy(handles.lt);
    if (arena) cudaFree(arena);
    if (stream) cudaStreamDestroy(stream);
  }

  void run_layers(cudaStream_t s) {
    const rt::Plan& plan = engine->plan;
    for (size_t i = 0; i < layers.size(); ++i) {
      const rt::PlanLayer& l = plan.layers[i];
      try {
        layers[i]->enqueue(ios[i], s, handles);
        if (sync_each) {
          KCUDA(cudaStreamSynchronize(s));
          KCUDA(cudaGetLastError());
        }
      } catch (const Error& e) {
        fail(l.op, " node '", l.name, "' (tactic ", l.tactic, "): ", e.what());
      }
    }
  }
};

ExecutionContext::ExecutionContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;

std::unique_ptr<ExecutionContext> Engine::create_execution_context() const {
  auto c = std::make_unique<ExecutionContext::Impl>();
  c->engine = impl_;
  const rt::Plan& plan = impl_->plan;
  KCUDA(cudaSetDevice(impl_->device));
  KCUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  KCUDNN(cudnnCreate(&c->handles.cudnn));
  KCUBLAS(cublasLtCreate(&c->handles.lt));
  if (plan.arena_bytes) KCUDA(cudaMalloc(&c->arena, static_cast<size_t>(plan.arena_bytes)));
  if (const char* e = std::getenv("KESTREL_CUDA_SYNC"); e && std::strcmp(e, "1") == 0) {
    c->sync_each = true;
    c->graphs = false;
  }
  auto resolve = [&](int32_t id) -> void* {
    if (id < 0) return nullptr;
    const rt::PlanTensor& t = plan.tensors[id];
    switch (t.storage) {
      case rt::Storage::Arena: return at(c->arena, t.offset);
      case rt::Storage::Weights: return at(impl_->weights, t.offset);
      default: return nullptr;  // I/O: patched per enqueue
    }
  };
  for (size_t i = 0; i < plan.layers.size(); ++i) {
    const rt::PlanLayer& l = plan.layers[i];
    std::unique_ptr<cuda::Layer> layer;
    try {
      layer = cuda::create_layer(rt::layer_spec(plan, l, impl_->metas));
      layer->set_tactic(l.tactic, c->handles);
    } catch (const Error& e) {
      fail("cannot set up layer '", l.name, "' (", l.op, ", tactic ", l.tactic, "): ", e.what());
    }
    KESTREL_CHECK(layer->scratch_bytes() <= l.scratch_bytes, "layer '", l.name, "' tactic ", l.tactic, " needs ",
                  layer->scratch_bytes(), " bytes of scratch but the engine reserved ", l.scratch_bytes,
                  " (the libraries differ from the build machine's; rebuild the engine)");
    cuda::LayerIO io;
    for (size_t k = 0; k < l.inputs.size(); ++k) {
      io.in.push_back(resolve(l.inputs[k]));
      if (l.inputs[k] >= 0 && plan.tensors[l.inputs[k]].storage == rt::Storage::Input)
        c->patches.push_back({i, false, k, plan.tensors[l.inputs[k]].slot});
      KESTREL_CHECK(l.inputs[k] < 0 || plan.tensors[l.inputs[k]].storage != rt::Storage::Output,
                    "internal: layer '", l.name, "' reads an engine output");
    }
    for (size_t k = 0; k < l.outputs.size(); ++k) {
      io.out.push_back(resolve(l.outputs[k]));
      if (plan.tensors[l.outputs[k]].storage == rt::Storage::Output)
        c->patches.push_back({i, true, k, plan.tensors[l.outputs[k]].slot});
    }
    io.scratch = l.scratch_bytes ? at(c->arena, l.scratch_offset) : nullptr;
    c->layers.push_back(std::move(layer));
    c->ios.push_back(std::move(io));
  }
  return std::make_unique<ExecutionContext>(std::move(c));
}

void ExecutionContext::enqueue(const std::vector<const void*>& inputs, const std::vector<void*>& outputs,
                               cudaStream_t stream) {
  Impl& c = *impl_;
  const rt::Plan& plan = c.engine->plan;
  KESTREL_CHECK(inputs.size() == plan.inputs.size(), "expected ", plan.inputs.size(), " input buffers, got ", inputs.size());
  KESTREL_CHECK(outputs.size() == plan.outputs.size(), "expected ", plan.outputs.size(), " output buffers, got ", outputs.size());
  for (auto* p : inputs) KESTREL_CHECK(p, "null input buffer");
  for (auto* p : outputs) KESTREL_CHECK(p, "null output buffer");
  for (const Patch& p : c.patches) {
    if (p.output) c.ios[p.layer].out[p.index] = outputs[p.slot];
    else c.ios[p.layer].in[p.index] = const_cast<void*>(inputs[p.slot]);
  }
  KCUDA(cudaSetDevice(c.engine->device));
  cudaStream_t s = stream ? stream : c.stream;
  if (!c.graphs) {
    c.run_layers(s);
    return;
  }
  std::vector<const void*> key(inputs.begin(), inputs.end());
  key.insert(key.end(), outputs.begin(), outputs.end());
  if (!c.graph || key != c.graph_key) {
    if (c.graph) {
      KCUDA(cudaGraphExecDestroy(c.graph));
      c.graph = nullptr;
    }
    // One eager run first: libraries load kernels and set up lazily, which must not happen inside a
    // capture. Then capture on the context's own stream (the legacy default stream cannot be captured)
    // and launch the graph on the caller's.
    if (!c.warmed) {
      c.run_layers(s);
      KCUDA(cudaStreamSynchronize(s));
      c.warmed = true;
    }
    KCUDA(cudaStreamBeginCapture(c.stream, cudaStreamCaptureModeRelaxed));
    cudaGraph_t g = nullptr;
    try {
      c.run_layers(c.stream);
    } catch (...) {
      cudaStreamEndCapture(c.stream, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    KCUDA(cudaStreamEndCapture(c.stream, &g));
    const cudaError_t e = cudaGraphInstantiate(&c.graph, g, 0);
    cudaGraphDestroy(g);
    KCUDA(e);
    c.graph_key = key;
  }
  KCUDA(cudaGraphLaunch(c.graph, s));
}

std::vector<HostTensor> ExecutionContext::run(const std::vector<HostTensor>& inputs) {
  Impl& c = *impl_;
  const rt::Plan& plan = c.engine->plan;
  KESTREL_CHECK(inputs.size() == plan.inputs.size(), "expected ", plan.inputs.size(), " inputs, got ", inputs.size());
  KCUDA(cudaSetDevice(c.engine->device));
  if (c.host_in.empty()) {
    for (int32_t id : plan.inputs) {
      void* p = nullptr;
      KCUDA(cudaMalloc(&p, std::max<size_t>(1, shape_numel(plan.tensors[id].shape) * dtype_size(plan.tensors[id].dtype))));
      c.host_in.push_back(p);
    }
    for (int32_t id : plan.outputs) {
      void* p = nullptr;
      KCUDA(cudaMalloc(&p, std::max<size_t>(1, shape_numel(plan.tensors[id].shape) * dtype_size(plan.tensors[id].dtype))));
      c.host_out.push_back(p);
    }
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const rt::PlanTensor& t = plan.tensors[plan.inputs[i]];
    KESTREL_CHECK(inputs[i].shape() == t.shape, "input '", t.name, "' expects shape ", shape_str(t.shape), ", got ",
                  shape_str(inputs[i].shape()));
    KESTREL_CHECK(inputs[i].dtype() == t.dtype, "input '", t.name, "' expects ", dtype_name(t.dtype), ", got ",
                  dtype_name(inputs[i].dtype()));
    KCUDA(cudaMemcpyAsync(c.host_in[i], inputs[i].raw(), inputs[i].nbytes(), cudaMemcpyHostToDevice, c.stream));
  }
  std::vector<const void*> in(c.host_in.begin(), c.host_in.end());
  enqueue(in, c.host_out, c.stream);
  std::vector<HostTensor> outs;
  for (size_t i = 0; i < plan.outputs.size(); ++i) {
    const rt::PlanTensor& t = plan.tensors[plan.outputs[i]];
    HostTensor y(t.dtype, t.shape);
    KCUDA(cudaMemcpyAsync(y.raw(), c.host_out[i], y.nbytes(), cudaMemcpyDeviceToHost, c.stream));
    outs.push_back(std::move(y));
  }
  KCUDA(cudaStreamSynchronize(c.stream));
  return outs;
}

std::vector<std::pair<std::string, double>> ExecutionContext::profile(const std::vector<const void*>& inputs,
                                                                     const std::vector<void*>& outputs, int runs) {
  Impl& c = *impl_;
  const rt::Plan& plan = c.engine->plan;
  KESTREL_CHECK(inputs.size() == plan.inputs.size() && outputs.size() == plan.outputs.size(),
                "profile: wrong number of I/O buffers");
  for (const Patch& p : c.patches) {
    if (p.output) c.ios[p.layer].out[p.index] = outputs[p.slot];
    else c.ios[p.layer].in[p.index] = const_cast<void*>(inputs[p.slot]);
  }
  KCUDA(cudaSetDevice(c.engine->device));
  std::vector<cudaEvent_t> ev(c.layers.size() + 1);
  for (auto& e : ev) KCUDA(cudaEventCreate(&e));
  std::vector<double> total(c.layers.size(), 0.0);
  try {
    c.run_layers(c.stream);  // warm-up: lazy library set-up stays out of the figures
    for (int r = 0; r < std::max(runs, 1); ++r) {
      KCUDA(cudaEventRecord(ev[0], c.stream));
      for (size_t i = 0; i < c.layers.size(); ++i) {
        c.layers[i]->enqueue(c.ios[i], c.stream, c.handles);
        KCUDA(cudaEventRecord(ev[i + 1], c.stream));
      }
      KCUDA(cudaEventSynchronize(ev.back()));
      for (size_t i = 0; i < c.layers.size(); ++i) {
        float ms = 0;
        KCUDA(cudaEventElapsedTime(&ms, ev[i], ev[i + 1]));
        total[i] += ms;
      }
    }
  } catch (...) {
    for (auto& e : ev) cudaEventDestroy(e);
    throw;
  }
  for (auto& e : ev) cudaEventDestroy(e);
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < c.layers.size(); ++i)
    out.emplace_back(plan.layers[i].name + " (" + plan.layers[i].op + ", " + plan.layers[i].tactic + ")",
                     total[i] / std::max(runs, 1));
  return out;
}

void ExecutionContext::set_cuda_graphs(bool on) { impl_->graphs = on && !impl_->sync_each; }
bool ExecutionContext::cuda_graphs() const { return impl_->graphs; }
cudaStream_t ExecutionContext::stream() const { return impl_->stream; }
const EngineInfo& ExecutionContext::info() const { return impl_->engine->info; }

}  // namespace kestrel
