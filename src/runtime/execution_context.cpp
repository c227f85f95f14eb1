// ExecutionContext: one activation arena (sized for the engine's largest plan), one set of library
// handles and the layers of every plan of one engine, bound to that arena. A batch runs as slices
// through the plans (batch_profile.h), one after the other on one stream, so they share the arena;
// or, where the plans' tuned times make it cheaper, padded into the smallest plan that holds it:
// its images are copied into staging buffers of that plan's batch (allocated on first use, zeroed so
// the padding images are defined), the plan runs there, and the batch's outputs are copied back.
// I/O pointers (plus each slice's offset) are patched in per enqueue. With CUDA graphs on, the whole
// enqueue of a batch is captured once and replayed; new I/O addresses update the graph's kernel
// parameters in place (cudaGraphExecUpdate) instead of instantiating another.
// A plan whose layers were given auxiliary streams forks onto the context's own streams after an event
// on the enqueue stream and joins back before the batch's outputs are read; every wait between streams
// is derived here from the memory the layers touch (stream_schedule.h), not taken from the file.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>

#include "backend/cuda/check.h"
#include "backend/cuda/cudnn_plan_cache.h"
#include "backend/cuda/graph_timing.h"
#include "runtime/batch_profile.h"
#include "runtime/engine_impl.h"
#include "runtime/stream_schedule.h"

namespace kestrel {

namespace {
struct Patch {
  size_t layer;
  bool output;   // patch io.out (else io.in)
  size_t index;  // position in io.in / io.out
  int32_t slot;  // I/O slot
};

char* at(void* base, int64_t off) { return static_cast<char*>(base) + off; }

// One plan's layers bound to the context's arena.
struct BoundPlan {
  std::vector<std::unique_ptr<cuda::Layer>> layers;
  std::vector<cuda::LayerIO> ios;
  std::vector<Patch> patches;
  bool warmed = false;
  rt::StreamSync sync;               // sync.streams == 1: every layer on the enqueue stream
  std::vector<cudaEvent_t> events;   // per layer, where sync.records says so
};

// Each layer's reads and writes as regions of the arena (space 0) and the I/O buffers (one space per
// slot), scratch included; weights are never written and take no part.
std::vector<rt::LayerAccess> plan_access(const rt::Plan& plan) {
  auto region = [&](int32_t id) {
    const rt::PlanTensor& t = plan.tensors[id];
    const int64_t space = t.storage == rt::Storage::Arena   ? 0
                          : t.storage == rt::Storage::Input ? 1 + t.slot
                                                            : 1 + static_cast<int64_t>(plan.inputs.size()) + t.slot;
    return rt::tensor_region(space, t.storage == rt::Storage::Arena ? t.offset : 0, t.dtype, t.shape, t.strides);
  };
  std::vector<rt::LayerAccess> access;
  for (const rt::PlanLayer& l : plan.layers) {
    rt::LayerAccess a;
    for (int32_t id : l.inputs)
      if (id >= 0 && plan.tensors[id].storage != rt::Storage::Weights) a.reads.push_back(region(id));
    for (int32_t id : l.outputs) a.writes.push_back(region(id));
    if (l.scratch_bytes > 0) {
      rt::Region s;
      s.offset = l.scratch_offset;
      s.shape = {l.scratch_bytes};
      s.strides = {1};
      a.writes.push_back(s);
    }
    access.push_back(std::move(a));
  }
  return access;
}

struct CapturedBatch {
  cudaGraphExec_t exec = nullptr;
  std::vector<const void*> key;  // the I/O addresses it was captured or last updated with
};
}  // namespace

struct ExecutionContext::Impl {
  std::shared_ptr<Engine::Impl> engine;
  RuntimeConfig config;
  cudaStream_t stream = nullptr;
  std::vector<cudaStream_t> aux;     // auxiliary streams, as many as the plans use
  cudaEvent_t fork = nullptr;        // recorded on the enqueue stream before the aux streams start
  std::vector<cudaEvent_t> joins;    // one per aux stream, waited for by the enqueue stream at the end
  cuda::Handles handles;
  void* arena = nullptr;
  std::vector<BoundPlan> plans;
  int64_t batch = 0;
  std::vector<int64_t> in_image_bytes, out_image_bytes;  // per I/O slot, one image
  std::vector<std::string> in_names, out_names;
  std::vector<const void*> named_in;  // set_tensor_address
  std::vector<void*> named_out;
  std::vector<void*> host_in, host_out;  // device buffers of the host API, at max_batch
  std::map<int64_t, CapturedBatch> graphs;
  GraphStats stats;
  std::vector<double> plan_ms;                 // each plan's tuned time
  double copy_ms_per_image = 0;                // the staged copies in and out of one image
  rt::BatchRun run;                            // how `batch` runs (set with it)
  std::vector<void*> stage_in, stage_out;      // padding staging buffers, per I/O slot, at max batch

  // The staged copies (device to device) move about this many bytes per ms.
  static constexpr double kCopyBytesPerMs = 1e9;
  void set_batch(int64_t b) {
    run = rt::plan_batch_run(b, engine->batches, plan_ms, copy_ms_per_image, config.batch_padding);
    batch = b;
  }
  // Once, at the largest plan's batch, before any capture (cudaMalloc must not run inside one); the
  // zeroing is ordered before the first use on `s`.
  void ensure_staging(cudaStream_t s) {
    if (run.padded == SIZE_MAX || !stage_in.empty()) return;
    const int64_t max = engine->batches.back();
    std::vector<void*> in(in_image_bytes.size(), nullptr), out(out_image_bytes.size(), nullptr);
    try {  // all or nothing: a failed allocation leaves no half-made staging behind
      for (size_t i = 0; i < in.size(); ++i) {
        KCUDA(cudaMalloc(&in[i], std::max<size_t>(1, static_cast<size_t>(max * in_image_bytes[i]))));
        KCUDA(cudaMemsetAsync(in[i], 0, static_cast<size_t>(max * in_image_bytes[i]), s));
      }
      for (size_t i = 0; i < out.size(); ++i)
        KCUDA(cudaMalloc(&out[i], std::max<size_t>(1, static_cast<size_t>(max * out_image_bytes[i]))));
    } catch (...) {
      for (void* p : in) cudaFree(p);
      for (void* p : out) cudaFree(p);
      throw;
    }
    stage_in = std::move(in);
    stage_out = std::move(out);
  }

  ~Impl() {
    for (auto& [b, g] : graphs)
      if (g.exec) cudaGraphExecDestroy(g.exec);
    for (void* p : host_in) cudaFree(p);
    for (void* p : host_out) cudaFree(p);
    for (void* p : stage_in) cudaFree(p);
    for (void* p : stage_out) cudaFree(p);
    for (BoundPlan& b : plans)
      for (cudaEvent_t e : b.events)
        if (e) cudaEventDestroy(e);
    plans.clear();  // descriptors before handles
    for (cudaEvent_t e : joins) cudaEventDestroy(e);
    if (fork) cudaEventDestroy(fork);
    for (cudaStream_t a : aux) cudaStreamDestroy(a);
    if (handles.cudnn) {
      cuda::set_cudnn_plan_cache(handles.cudnn, "");  // a later handle may reuse the address
      cudnnDestroy(handles.cudnn);
    }
    if (handles.lt) cublasLtDestroy(handles.lt);
    if (arena) cudaFree(arena);
    if (stream) cudaStreamDestroy(stream);
  }

  const rt::Plan& plan(size_t k) const { return engine->file.plans[k]; }

  void run_layers(size_t k, cudaStream_t s) {
    BoundPlan& b = plans[k];
    const bool forked = b.sync.streams > 1 && !config.sync_each_layer;
    const int used = forked ? b.sync.streams - 1 : 0;
    if (forked) {
      KCUDA(cudaEventRecord(fork, s));
      for (int a = 0; a < used; ++a) KCUDA(cudaStreamWaitEvent(aux[a], fork, 0));
    }
    for (size_t i = 0; i < b.layers.size(); ++i) {
      const rt::PlanLayer& l = plan(k).layers[i];
      const cudaStream_t x = forked && l.stream > 0 ? aux[l.stream - 1] : s;
      try {
        if (forked)
          for (int w : b.sync.waits[i]) KCUDA(cudaStreamWaitEvent(x, b.events[w], 0));
        b.layers[i]->enqueue(b.ios[i], x, handles);
        if (forked && b.sync.records[i]) KCUDA(cudaEventRecord(b.events[i], x));
        if (config.sync_each_layer) {
          KCUDA(cudaStreamSynchronize(s));
          KCUDA(cudaGetLastError());
        }
      } catch (const Error& e) {
        fail(l.op, " node '", l.name, "' (tactic ", l.tactic, "): ", e.what());
      }
    }
    for (int a = 0; a < used; ++a) {
      KCUDA(cudaEventRecord(joins[a], aux[a]));
      KCUDA(cudaStreamWaitEvent(s, joins[a], 0));
    }
  }

  void patch(size_t k, const std::vector<const void*>& in, const std::vector<void*>& out, int64_t start) {
    for (const Patch& p : plans[k].patches) {
      if (p.output) plans[k].ios[p.layer].out[p.index] = at(out[p.slot], start * out_image_bytes[p.slot]);
      else plans[k].ios[p.layer].in[p.index] = at(const_cast<void*>(in[p.slot]), start * in_image_bytes[p.slot]);
    }
  }

  // Every slice of the current batch through its plan, or the batch padded into one plan.
  void run_batch(const std::vector<const void*>& in, const std::vector<void*>& out, cudaStream_t s) {
    if (run.padded == SIZE_MAX) {
      for (const rt::BatchSlice& slice : run.slices) {
        patch(slice.plan, in, out, slice.start);
        run_layers(slice.plan, s);
      }
      return;
    }
    for (size_t i = 0; i < in.size(); ++i)
      KCUDA(cudaMemcpyAsync(stage_in[i], in[i], static_cast<size_t>(batch * in_image_bytes[i]), cudaMemcpyDeviceToDevice, s));
    patch(run.padded, std::vector<const void*>(stage_in.begin(), stage_in.end()), stage_out, 0);
    run_layers(run.padded, s);
    for (size_t i = 0; i < out.size(); ++i)
      KCUDA(cudaMemcpyAsync(out[i], stage_out[i], static_cast<size_t>(batch * out_image_bytes[i]), cudaMemcpyDeviceToDevice, s));
  }

  // Libraries load kernels and set up lazily, which must not happen inside a capture: each plan
  // runs once eagerly before its first capture.
  void warm_up(const std::vector<const void*>& in, const std::vector<void*>& out, cudaStream_t s) {
    bool ran = false;
    if (run.padded != SIZE_MAX) {
      if (!plans[run.padded].warmed) {
        run_batch(in, out, s);
        plans[run.padded].warmed = ran = true;
      }
    } else {
      for (const rt::BatchSlice& slice : run.slices) {
        if (plans[slice.plan].warmed) continue;
        patch(slice.plan, in, out, slice.start);
        run_layers(slice.plan, s);
        plans[slice.plan].warmed = ran = true;
      }
    }
    if (ran) KCUDA(cudaStreamSynchronize(s));
  }

  // Captured on the context's own stream (the legacy default stream cannot be captured).
  cudaGraph_t capture(const std::vector<const void*>& in, const std::vector<void*>& out) {
    KCUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
    cudaGraph_t g = nullptr;
    try {
      run_batch(in, out, stream);
    } catch (...) {
      cudaStreamEndCapture(stream, &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    KCUDA(cudaStreamEndCapture(stream, &g));
    ++stats.captures;
    return g;
  }

  void enqueue(const std::vector<const void*>& in, const std::vector<void*>& out, cudaStream_t caller) {
    const rt::Plan& p0 = plan(0);
    KESTREL_CHECK(in.size() == p0.inputs.size(), "expected ", p0.inputs.size(), " input buffers, got ", in.size());
    KESTREL_CHECK(out.size() == p0.outputs.size(), "expected ", p0.outputs.size(), " output buffers, got ", out.size());
    for (size_t i = 0; i < in.size(); ++i) KESTREL_CHECK(in[i], "no address for input '", in_names[i], "'");
    for (size_t i = 0; i < out.size(); ++i) KESTREL_CHECK(out[i], "no address for output '", out_names[i], "'");
    KCUDA(cudaSetDevice(engine->device));
    cudaStream_t s = caller ? caller : stream;
    ensure_staging(s);
    if (!config.cuda_graphs) {
      run_batch(in, out, s);
      return;
    }
    std::vector<const void*> key(in.begin(), in.end());
    key.insert(key.end(), out.begin(), out.end());
    CapturedBatch& cb = graphs[batch];
    if (!cb.exec || key != cb.key) {
      warm_up(in, out, s);
      cudaGraph_t g = capture(in, out);
      cudaError_t e = cudaErrorUnknown;
      if (cb.exec) {
        // Same batch, same kernels, new addresses: only kernel parameters change.
        cudaGraphExecUpdateResultInfo info{};
        e = cudaGraphExecUpdate(cb.exec, g, &info);
        if (e == cudaSuccess) {
          ++stats.updates;
        } else {
          cudaGetLastError();  // the failed update is not a sticky error; instantiate instead
          KCUDA(cudaGraphExecDestroy(cb.exec));
          cb.exec = nullptr;
        }
      }
      if (!cb.exec) {
        e = cudaGraphInstantiate(&cb.exec, g, 0);
        if (e == cudaSuccess) ++stats.instantiations;
      }
      cudaGraphDestroy(g);
      if (e != cudaSuccess) graphs.erase(batch);
      KCUDA(e);
      cb.key = std::move(key);
    }
    KCUDA(cudaGraphLaunch(cb.exec, s));
  }

  size_t in_slot(const std::string& name) const {
    for (size_t i = 0; i < in_names.size(); ++i)
      if (in_names[i] == name) return i;
    return SIZE_MAX;
  }
  size_t out_slot(const std::string& name) const {
    for (size_t i = 0; i < out_names.size(); ++i)
      if (out_names[i] == name) return i;
    return SIZE_MAX;
  }
  [[noreturn]] void unknown_tensor(const std::string& name) const {
    std::string names;
    for (auto& n : in_names) names += (names.empty() ? "" : ", ") + n;
    for (auto& n : out_names) names += (names.empty() ? "" : ", ") + n;
    fail("the engine has no input or output named '", name, "' (it has ", names, ")");
  }
};

ExecutionContext::ExecutionContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ExecutionContext::~ExecutionContext() = default;

std::unique_ptr<ExecutionContext> Engine::create_execution_context(const RuntimeConfig& config) const {
  auto c = std::make_unique<ExecutionContext::Impl>();
  c->engine = impl_;
  c->config = config;
  if (config.sync_each_layer) c->config.cuda_graphs = false;
  const rt::EngineFile& file = impl_->file;
  KCUDA(cudaSetDevice(impl_->device));
  KCUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  KCUDNN(cudnnCreate(&c->handles.cudnn));
  cuda::set_cudnn_plan_cache(c->handles.cudnn, config.cudnn_plan_cache);
  KCUBLAS(cublasLtCreate(&c->handles.lt));
  int64_t arena_bytes = 0;
  for (const rt::Plan& p : file.plans) arena_bytes = std::max(arena_bytes, p.arena_bytes);
  if (arena_bytes) KCUDA(cudaMalloc(&c->arena, static_cast<size_t>(arena_bytes)));
  const rt::Plan& p0 = file.plans[0];
  auto image_bytes = [&](int32_t id) {
    const rt::PlanTensor& t = p0.tensors[id];
    const int64_t n = t.shape.empty() || t.shape[0] == 0 ? 0 : shape_numel(t.shape) / t.shape[0];
    return n * static_cast<int64_t>(dtype_size(t.dtype));
  };
  for (int32_t id : p0.inputs) c->in_names.push_back(p0.tensors[id].name), c->in_image_bytes.push_back(image_bytes(id));
  for (int32_t id : p0.outputs) c->out_names.push_back(p0.tensors[id].name), c->out_image_bytes.push_back(image_bytes(id));
  c->named_in.assign(c->in_names.size(), nullptr);
  c->named_out.assign(c->out_names.size(), nullptr);
  for (const rt::Plan& p : file.plans) {
    double ms = 0;
    for (const rt::PlanLayer& l : p.layers) ms += l.time_ms;
    c->plan_ms.push_back(ms);
  }
  int64_t image_io_bytes = 0;
  for (int64_t b : c->in_image_bytes) image_io_bytes += b;
  for (int64_t b : c->out_image_bytes) image_io_bytes += b;
  c->copy_ms_per_image = static_cast<double>(image_io_bytes) / ExecutionContext::Impl::kCopyBytesPerMs;
  c->set_batch(file.max_batch);

  for (size_t k = 0; k < file.plans.size(); ++k) {
    const rt::Plan& plan = file.plans[k];
    const Engine::Impl::PlanOnDevice& dev = impl_->on_device[k];
    BoundPlan b;
    auto resolve = [&](int32_t id) -> void* {
      if (id < 0) return nullptr;
      const rt::PlanTensor& t = plan.tensors[id];
      switch (t.storage) {
        case rt::Storage::Arena: return at(c->arena, t.offset);
        case rt::Storage::Weights: return at(dev.weights, t.offset);
        default: return nullptr;  // I/O: patched per enqueue
      }
    };
    for (size_t i = 0; i < plan.layers.size(); ++i) {
      const rt::PlanLayer& l = plan.layers[i];
      std::unique_ptr<cuda::Layer> layer;
      try {
        layer = cuda::create_layer(rt::layer_spec(plan, l, dev.metas));
        layer->set_tactic(l.tactic, c->handles);
      } catch (const Error& e) {
        fail("cannot set up layer '", l.name, "' (", l.op, ", tactic ", l.tactic, "): ", e.what());
      }
      KESTREL_CHECK(layer->scratch_bytes() <= l.scratch_bytes, "layer '", l.name, "' tactic ", l.tactic, " needs ",
                    layer->scratch_bytes(), " bytes of scratch but the engine reserved ", l.scratch_bytes,
                    " (the libraries differ from the build machine's; rebuild the engine)");
      cuda::LayerIO io;
      for (size_t j = 0; j < l.inputs.size(); ++j) {
        io.in.push_back(resolve(l.inputs[j]));
        if (l.inputs[j] >= 0 && plan.tensors[l.inputs[j]].storage == rt::Storage::Input)
          b.patches.push_back({i, false, j, plan.tensors[l.inputs[j]].slot});
        KESTREL_CHECK(l.inputs[j] < 0 || plan.tensors[l.inputs[j]].storage != rt::Storage::Output, "internal: layer '",
                      l.name, "' reads an engine output");
      }
      for (size_t j = 0; j < l.outputs.size(); ++j) {
        io.out.push_back(resolve(l.outputs[j]));
        if (plan.tensors[l.outputs[j]].storage == rt::Storage::Output)
          b.patches.push_back({i, true, j, plan.tensors[l.outputs[j]].slot});
      }
      io.scratch = l.scratch_bytes ? at(c->arena, l.scratch_offset) : nullptr;
      b.layers.push_back(std::move(layer));
      b.ios.push_back(std::move(io));
    }
    c->plans.push_back(std::move(b));
    BoundPlan& bound = c->plans.back();  // owned by the context from here: its events go with it
    std::vector<int> stream;
    for (const rt::PlanLayer& l : plan.layers) stream.push_back(l.stream);
    if (std::any_of(stream.begin(), stream.end(), [](int s) { return s > 0; })) {
      bound.sync = rt::stream_sync(rt::memory_hazards(plan_access(plan)), stream);
      bound.events.assign(plan.layers.size(), nullptr);
      for (size_t i = 0; i < plan.layers.size(); ++i)
        if (bound.sync.records[i]) KCUDA(cudaEventCreateWithFlags(&bound.events[i], cudaEventDisableTiming));
    }
    const int aux_needed = bound.sync.streams - 1;
    while (static_cast<int>(c->aux.size()) < aux_needed) {
      cudaStream_t a = nullptr;
      KCUDA(cudaStreamCreateWithFlags(&a, cudaStreamNonBlocking));
      c->aux.push_back(a);
      cudaEvent_t j = nullptr;
      KCUDA(cudaEventCreateWithFlags(&j, cudaEventDisableTiming));
      c->joins.push_back(j);
    }
  }
  if (!c->aux.empty()) KCUDA(cudaEventCreateWithFlags(&c->fork, cudaEventDisableTiming));
  return std::make_unique<ExecutionContext>(std::move(c));
}

void ExecutionContext::set_batch(int64_t batch) {
  const EngineInfo& e = impl_->engine->info;
  if (batch < e.min_batch || batch > e.max_batch) {
    if (e.min_batch == e.max_batch)
      fail("this engine runs batch ", e.max_batch, " only, not ", batch,
           " (build one for a range of batches with --min-batch/--opt-batch/--max-batch)");
    fail("batch ", batch, " is outside this engine's profile [", e.min_batch, ", ", e.max_batch, "]");
  }
  impl_->set_batch(batch);
}

int64_t ExecutionContext::batch() const { return impl_->batch; }

void ExecutionContext::set_input_shape(const std::string& name, const Shape& shape) {
  const size_t i = impl_->in_slot(name);
  if (i == SIZE_MAX) impl_->unknown_tensor(name);
  const EngineInfo& e = impl_->engine->info;
  const Shape& full = e.inputs[i].shape;
  if (e.min_batch == e.max_batch) {  // one plan: its shapes exactly (an input need not lead with the batch)
    KESTREL_CHECK(shape == full, "input '", name, "' takes ", shape_str(full), ", not ", shape_str(shape),
                  shape.size() == full.size() && !shape.empty() && std::equal(shape.begin() + 1, shape.end(), full.begin() + 1)
                      ? " (the engine runs one batch; build one for a range with --min-batch/--max-batch)"
                      : "");
    return;
  }
  KESTREL_CHECK(shape.size() == full.size() && !shape.empty() && std::equal(shape.begin() + 1, shape.end(), full.begin() + 1),
                "input '", name, "' takes ", shape_str(full), " (any batch in [", e.min_batch, ", ", e.max_batch, "]), not ",
                shape_str(shape));
  set_batch(shape[0]);
}

Shape ExecutionContext::tensor_shape(const std::string& name) const {
  const EngineInfo& e = impl_->engine->info;
  Shape s;
  if (size_t i = impl_->in_slot(name); i != SIZE_MAX) s = e.inputs[i].shape;
  else if (size_t o = impl_->out_slot(name); o != SIZE_MAX) s = e.outputs[o].shape;
  else impl_->unknown_tensor(name);
  // A profile engine's inputs and outputs all lead with the batch (the engine file checks it); a
  // one-plan engine's are its shapes as built.
  if (e.min_batch != e.max_batch) s[0] = impl_->batch;
  return s;
}

void ExecutionContext::set_tensor_address(const std::string& name, void* address) {
  if (size_t i = impl_->in_slot(name); i != SIZE_MAX) impl_->named_in[i] = address;
  else if (size_t o = impl_->out_slot(name); o != SIZE_MAX) impl_->named_out[o] = address;
  else impl_->unknown_tensor(name);
}

void ExecutionContext::enqueue(cudaStream_t stream) { impl_->enqueue(impl_->named_in, impl_->named_out, stream); }

void ExecutionContext::enqueue(const std::vector<const void*>& inputs, const std::vector<void*>& outputs,
                               cudaStream_t stream) {
  impl_->enqueue(inputs, outputs, stream);
}

std::vector<HostTensor> ExecutionContext::run(const std::vector<HostTensor>& inputs) {
  Impl& c = *impl_;
  const EngineInfo& e = c.engine->info;
  KESTREL_CHECK(inputs.size() == e.inputs.size(), "expected ", e.inputs.size(), " inputs, got ", inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    KESTREL_CHECK(inputs[i].dtype() == e.inputs[i].dtype, "input '", e.inputs[i].name, "' expects ",
                  dtype_name(e.inputs[i].dtype), ", got ", dtype_name(inputs[i].dtype()));
    set_input_shape(e.inputs[i].name, inputs[i].shape());
    KESTREL_CHECK(e.min_batch == e.max_batch || inputs[i].shape()[0] == inputs[0].shape()[0], "inputs with different batches");
  }
  KCUDA(cudaSetDevice(c.engine->device));
  auto alloc = [](const EngineTensorInfo& t) {
    void* p = nullptr;
    KCUDA(cudaMalloc(&p, std::max<size_t>(1, shape_numel(t.shape) * dtype_size(t.dtype))));
    return p;
  };
  if (c.host_in.empty()) {
    for (const auto& t : e.inputs) c.host_in.push_back(alloc(t));
    for (const auto& t : e.outputs) c.host_out.push_back(alloc(t));
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    KCUDA(cudaMemcpyAsync(c.host_in[i], inputs[i].raw(), inputs[i].nbytes(), cudaMemcpyHostToDevice, c.stream));
  std::vector<const void*> in(c.host_in.begin(), c.host_in.end());
  c.enqueue(in, c.host_out, c.stream);
  std::vector<HostTensor> outs;
  for (size_t i = 0; i < e.outputs.size(); ++i) {
    HostTensor y(e.outputs[i].dtype, tensor_shape(e.outputs[i].name));
    KCUDA(cudaMemcpyAsync(y.raw(), c.host_out[i], y.nbytes(), cudaMemcpyDeviceToHost, c.stream));
    outs.push_back(std::move(y));
  }
  KCUDA(cudaStreamSynchronize(c.stream));
  return outs;
}

std::vector<std::pair<std::string, double>> ExecutionContext::profile(const std::vector<const void*>& inputs,
                                                                     const std::vector<void*>& outputs, int runs) {
  Impl& c = *impl_;
  size_t k = c.plans.size();
  for (size_t j = 0; j < c.engine->batches.size(); ++j)
    if (c.engine->batches[j] == c.batch) k = j;
  KESTREL_CHECK(k < c.plans.size(), "profile: the engine holds no plan for batch ", c.batch,
                " (it profiles the batches it was tuned for)");
  const rt::Plan& plan = c.plan(k);
  KESTREL_CHECK(inputs.size() == plan.inputs.size() && outputs.size() == plan.outputs.size(),
                "profile: wrong number of I/O buffers");
  c.patch(k, inputs, outputs, 0);
  KCUDA(cudaSetDevice(c.engine->device));
  BoundPlan& b = c.plans[k];
  c.run_layers(k, c.stream);  // warm-up: lazy library set-up stays out of the figures
  // Each layer a timed part of one graph, replayed as the engine replays it: no host launch cost and
  // no gap between layers is counted, so the layers' times add up to about the whole run's.
  cuda::TimedGraph g(c.stream, [&](cudaStream_t s, const std::function<void()>& mark) {
    for (size_t i = 0; i < b.layers.size(); ++i) {
      b.layers[i]->enqueue(b.ios[i], s, c.handles);
      mark();
    }
  });
  std::vector<double> total(b.layers.size(), 0.0);
  for (int r = 0; r < std::max(runs, 1); ++r) {
    const std::vector<float> ms = g.replay();
    for (size_t i = 0; i < b.layers.size(); ++i) total[i] += ms[i];
  }
  std::vector<std::pair<std::string, double>> out;
  for (size_t i = 0; i < b.layers.size(); ++i)
    out.emplace_back(plan.layers[i].name + " (" + plan.layers[i].op + ", " + plan.layers[i].tactic + ")",
                     total[i] / std::max(runs, 1));
  return out;
}

void ExecutionContext::set_cuda_graphs(bool on) { impl_->config.cuda_graphs = on && !impl_->config.sync_each_layer; }
bool ExecutionContext::cuda_graphs() const { return impl_->config.cuda_graphs; }
ExecutionContext::GraphStats ExecutionContext::graph_stats() const { return impl_->stats; }
cudaStream_t ExecutionContext::stream() const { return impl_->stream; }
const EngineInfo& ExecutionContext::info() const { return impl_->engine->info; }

}  // namespace kestrel
