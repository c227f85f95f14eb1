// Tactic selection. For every live layer with more than one candidate kernel: run the reference
// tactic (the layer's first) on random inputs, then each candidate on the same inputs with its outputs
// poisoned (NaN); a candidate whose output differs from the reference beyond the precision's tolerance
// (or leaves an element unwritten) is rejected and reported. The survivors are timed on the GPU alone,
// replayed as a CUDA graph like the engine (median of 5 samples of enough back-to-back runs to cover
// ~0.3 ms); the fastest wins. Results go to the timing cache, keyed by timing_cache_key (device,
// timing method, the kernels' build) and the layer's signature with its candidates; a cached layer is
// not timed, but a cached tactic other than the reference is checked against the reference as above
// before it is used. The bounds: accuracy_bounds.h. Tactics that compile code (cuDNN's run-time plans)
// compile on threads first.
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "backend/cuda/check.h"
#include "backend/cuda/graph_timing.h"
#include "backend/cuda/util.h"
#include "builder/accuracy_bounds.h"
#include "builder/build_plan.h"
#include "builder/tactic_choice.h"
#include "builder/timing_cache.h"
#include "builder/tuner.h"
#include "util/build_id.h"

#include "backend/cuda/cudnn_plan_cache.h"

namespace kestrel::bld {

namespace {

std::string attr_str(const Attribute& a) {
  std::ostringstream os;
  std::visit(
      [&](auto&& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, float>) os << x;
        else if constexpr (std::is_same_v<T, std::string>) os << x;
        else if constexpr (std::is_same_v<T, HostTensor>) os << "tensor" << shape_str(x.shape());
        else {
          os << "[";
          for (auto& v : x) os << v << ",";
          os << "]";
        }
      },
      a);
  std::string s = os.str();
  for (char& c : s)
    if (c == '\t' || c == '\n') c = ' ';
  return s;
}

int64_t align_class(const BTensor& t) {
  return (t.elem_offset * static_cast<int64_t>(dtype_size(t.dtype))) % 16;
}

std::string signature(const BuildPlan& p, const BLayer& l, int64_t workspace_limit) {
  std::ostringstream os;
  os << l.op << "|" << precision_name(p.precision) << (p.tf32 ? "|tf32" : "") << "|ws" << workspace_limit;
  auto tensor = [&](int t) {
    if (t < 0) {
      os << "|-";
      return;
    }
    const BTensor& x = p.tensors[t];
    os << "|" << dtype_name(x.dtype) << shape_str(x.shape) << "s" << shape_str(x.strides) << "a" << align_class(x);
  };
  for (int t : l.in) tensor(t);
  os << "|->";
  for (int t : l.out) tensor(t);
  for (auto& [k, v] : l.attrs.all())
    if (k != "kestrel_fused") os << "|" << k << "=" << attr_str(v);
  return os.str();
}

// Device buffers for one layer's tensors: one allocation per storage root, views at their offsets.
class Buffers {
 public:
  Buffers(const BuildPlan& p, const void* weights, cudaStream_t s) : p_(p), weights_(weights), s_(s) {}
  ~Buffers() {
    for (auto& [r, ptr] : roots_) cudaFree(ptr);
  }
  void* ptr(int t, uint32_t seed) {
    if (t < 0) return nullptr;
    const BTensor& x = p_.tensors[t];
    if (x.storage == rt::Storage::Weights) return static_cast<char*>(const_cast<void*>(weights_)) + x.offset;
    const int root = x.storage == rt::Storage::Arena ? x.root : t;
    auto it = roots_.find(root);
    if (it == roots_.end()) {
      const BTensor& r = p_.tensors[root];
      void* d = nullptr;
      KCUDA(cudaMalloc(&d, static_cast<size_t>(std::max<int64_t>(r.bytes(), 16))));
      cuda::fill_random(d, r.dtype, shape_numel(r.shape), seed, -1.f, 1.f, s_);
      it = roots_.emplace(root, d).first;
    }
    const int64_t off = x.storage == rt::Storage::Arena ? x.elem_offset * static_cast<int64_t>(dtype_size(x.dtype)) : 0;
    return static_cast<char*>(it->second) + off;
  }
  int64_t root_bytes(int t) const { return p_.tensors[p_.tensors[t].storage == rt::Storage::Arena ? p_.tensors[t].root : t].bytes(); }

 private:
  const BuildPlan& p_;
  const void* weights_;
  cudaStream_t s_;
  std::map<int, void*> roots_;
};

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(int64_t bytes) {
    if (bytes > 0) KCUDA(cudaMalloc(&p, static_cast<size_t>(bytes)));
  }
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
};

class Tuner {
 public:
  Tuner(BuildPlan& p, const TuneOptions& o) : p_(p), o_(o) {
    KCUDA(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking));
    KCUDNN(cudnnCreate(&h_.cudnn));
    KCUDNN(cudnnSetStream(h_.cudnn, s_));
    cuda::set_cudnn_plan_cache(h_.cudnn, o_.cudnn_plan_cache);
    KCUBLAS(cublasLtCreate(&h_.lt));
    if (!p_.weights.empty()) {
      KCUDA(cudaMalloc(&weights_, p_.weights.size()));
      KCUDA(cudaMemcpy(weights_, p_.weights.data(), p_.weights.size(), cudaMemcpyHostToDevice));
    }
    metas_ = metas_of(p_);
  }
  ~Tuner() {
    if (weights_) cudaFree(weights_);
    if (h_.lt) cublasLtDestroy(h_.lt);
    if (h_.cudnn) {
      cuda::set_cudnn_plan_cache(h_.cudnn, "");  // a later handle may reuse the address
      cudnnDestroy(h_.cudnn);
    }
    cudaStreamDestroy(s_);
  }

  TuneStats run(TimingCache& cache) {
    compile_ahead();
    for (BLayer& l : p_.layers)
      if (!l.removed) {
        try {
          tune_layer(l, cache);
        } catch (const Error& e) {
          fail(l.op, " node '", l.name, "': ", e.what());
        }
      }
    for (const auto& [name, tactic] : o_.forced)
      KESTREL_CHECK(std::find(forced_seen_.begin(), forced_seen_.end(), name) != forced_seen_.end(),
                    "forced tactic for '", name, "': no live layer has that name");
    return stats_;
  }

 private:
  cuda::LayerSpec spec(const BLayer& l) const { return layer_spec(p_, l, metas_); }

  // Tactics that compile code in set_tactic (cuDNN's run-time plans of the INT8 convolutions: tens to
  // hundreds of milliseconds of CPU each, three per layer) compile first on several threads, each with
  // its own cuDNN handle, into the plan cache (a plan already there is left alone); the tuning loop
  // below, one layer after another, then restores them from there. Only where that cache is on (it is
  // how the threads hand plans over). A failure here is left for the loop, which meets it again and
  // reports it.
  void compile_ahead() {
    if (!o_.cudnn_tactics || !cuda::cudnn_plan_cache_on(h_.cudnn)) return;
    std::vector<const BLayer*> todo;
    std::set<std::string> seen;  // layers of one signature compile the same plans
    for (const BLayer& l : p_.layers)
      if (!l.removed && l.op == "kestrel.ConvInt8" && seen.insert(signature(p_, l, o_.workspace_limit)).second)
        todo.push_back(&l);
    const int threads = static_cast<int>(
        std::min<size_t>(todo.size(), std::clamp(std::thread::hardware_concurrency(), 1u, 8u)));
    if (threads < 2) return;
    int dev = 0;
    KCUDA(cudaGetDevice(&dev));
    std::atomic<size_t> next{0};
    auto work = [&] {
      cuda::Handles h;
      if (cudaSetDevice(dev) != cudaSuccess || cudnnCreate(&h.cudnn) != CUDNN_STATUS_SUCCESS) return;
      cuda::set_cudnn_plan_cache(h.cudnn, o_.cudnn_plan_cache);
      for (size_t i = next++; i < todo.size(); i = next++) {
        try {
          const std::unique_ptr<cuda::Layer> layer = cuda::create_layer(spec(*todo[i]));
          for (const std::string& t : layer->tactics(h)) try {
              layer->compile_ahead(t, h);
            } catch (const std::exception&) {
            }
        } catch (const std::exception&) {
        }
      }
      cuda::set_cudnn_plan_cache(h.cudnn, "");  // a later handle may reuse the address
      cudnnDestroy(h.cudnn);
    };
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) pool.emplace_back(work);
    for (std::thread& t : pool) t.join();
  }

  void tune_layer(BLayer& l, TimingCache& cache) {
    std::unique_ptr<cuda::Layer> layer = cuda::create_layer(spec(l));
    std::vector<std::string> cands;
    for (const std::string& t : layer->tactics(h_)) {
      if (o_.obey_precision && layer->skips_quantization(t)) continue;
      // A tactic source left out: skipped before set_tactic, which compiles cuDNN's run-time plans.
      if (!o_.cudnn_tactics && t.rfind("cudnn", 0) == 0) continue;
      if (!o_.cublaslt_tactics && t.rfind("cublaslt", 0) == 0) continue;
      try {
        layer->set_tactic(t, h_);
      } catch (const Error&) {
        continue;
      }
      if (layer->scratch_bytes() > o_.workspace_limit) {
        ++stats_.over_workspace;
        continue;
      }
      cands.push_back(t);
    }
    KESTREL_CHECK(!cands.empty(), "no tactic fits the workspace limit of ", o_.workspace_limit, " bytes");
    stats_.candidates.emplace_back(l.name, cands);
    if (auto f = o_.forced.find(l.name); f != o_.forced.end()) {
      KESTREL_CHECK(std::find(cands.begin(), cands.end(), f->second) != cands.end(), "forced tactic '", f->second,
                    "' is not one of the layer's candidates");
      forced_seen_.push_back(l.name);
      layer->set_tactic(f->second, h_);
      l.tactic = f->second;
      l.time_ms = 0;
      l.scratch_bytes = layer->scratch_bytes();
      return;
    }
    if (o_.reference_only) cands.resize(1);
    // The candidates are part of the key: a build that offers a tactic the cached choice was never
    // measured against times the layer again instead of keeping a choice made without it.
    std::string sig = signature(p_, l, o_.workspace_limit) + "|tactics";
    for (const std::string& t : cands) sig += ":" + t;
    std::optional<TimingCache::Entry> hit = o_.reference_only ? std::nullopt : cache.get(o_.device_key, sig);
    if (hit && std::find(cands.begin(), cands.end(), hit->tactic) == cands.end()) hit.reset();
    if (hit && hit->tactic == cands[0]) {  // the reference itself: nothing to check
      layer->set_tactic(hit->tactic, h_);
      l.tactic = hit->tactic;
      l.time_ms = hit->time_ms;
      l.scratch_bytes = layer->scratch_bytes();
      if (cands.size() > 1) ++stats_.cached;
      return;
    }
    Buffers bufs(p_, weights_, s_);
    cuda::LayerIO io;
    uint32_t seed = 1234;
    for (int t : l.in) io.in.push_back(bufs.ptr(t, seed++));
    for (int t : l.out) io.out.push_back(bufs.ptr(t, seed++));
    if (cands.size() == 1) {
      // Nothing to choose; timed anyway (and cached) so inspect can show where the time goes.
      layer->set_tactic(cands[0], h_);
      DeviceBuffer scratch(layer->scratch_bytes());
      io.scratch = scratch.p;
      const float est = time_runs(*layer, io, 1, 1);
      const int reps = std::clamp(static_cast<int>(0.2f / std::max(est, 1e-3f)), 1, 20);
      l.tactic = cands[0];
      l.time_ms = time_runs(*layer, io, reps, 0);
      l.scratch_bytes = layer->scratch_bytes();
      if (!o_.reference_only) cache.put(o_.device_key, sig, {l.tactic, l.time_ms});
      return;
    }
    // Reference outputs.
    layer->set_tactic(cands[0], h_);
    DeviceBuffer scratch0(layer->scratch_bytes());
    io.scratch = scratch0.p;
    for (size_t k = 0; k < l.out.size(); ++k) cuda::poison_view(io.out[k], metas_[l.out[k]], s_);
    const float ref_ms = time_runs(*layer, io, 1, 1);
    std::vector<std::unique_ptr<DeviceBuffer>> refs;
    for (size_t k = 0; k < l.out.size(); ++k) {
      const int64_t bytes = bufs.root_bytes(l.out[k]);
      refs.push_back(std::make_unique<DeviceBuffer>(bytes));
      // Copy the output's whole root: the view sits at the same element offset in the copy.
      const BTensor& x = p_.tensors[l.out[k]];
      const int64_t off = x.storage == rt::Storage::Arena ? x.elem_offset * static_cast<int64_t>(dtype_size(x.dtype)) : 0;
      KCUDA(cudaMemcpyAsync(refs[k]->p, static_cast<char*>(io.out[k]) - off, static_cast<size_t>(bytes), cudaMemcpyDeviceToDevice, s_));
    }
    // Runs tactic t once (outputs poisoned first; `scratch` keeps its workspace for timing runs after)
    // and returns the time of that run; `ok` tells whether its output is within the precision's bound
    // of the reference's (accuracy_bounds.h), `err` how far it is.
    auto check = [&](const std::string& t, std::unique_ptr<DeviceBuffer>& scratch, double& err, bool& ok) {
      layer->set_tactic(t, h_);
      scratch = std::make_unique<DeviceBuffer>(layer->scratch_bytes());
      io.scratch = scratch->p;
      for (size_t k = 0; k < l.out.size(); ++k) cuda::poison_view(io.out[k], metas_[l.out[k]], s_);
      const float first = time_runs(*layer, io, 1, 1);
      err = 0;
      for (size_t k = 0; k < l.out.size(); ++k) {
        const BTensor& x = p_.tensors[l.out[k]];
        const int64_t off = x.storage == rt::Storage::Arena ? x.elem_offset * static_cast<int64_t>(dtype_size(x.dtype)) : 0;
        err = std::max(err, cuda::rel_l2_device(io.out[k], metas_[l.out[k]], static_cast<char*>(refs[k]->p) + off,
                                                metas_[l.out[k]], s_));
      }
      const bool int8_layer = l.op == "kestrel.ConvInt8" || l.op == "kestrel.QuantizeInt8";
      ok = err <= tactic_rel_l2_bound(p_.precision, p_.tf32, int8_layer, layer->skips_quantization(t));
      return first;
    };
    auto reject = [&](const std::string& t, double err) {
      ++stats_.rejected;
      notes_.push_back(l.name + ": tactic " + t + " rejected (rel. L2 " + std::to_string(err) + " vs reference)");
    };
    if (hit) {
      // The timing cache saves the timing, never the check: the cached tactic is checked against the
      // reference before it is used, and timed afresh with the others when it fails.
      std::unique_ptr<DeviceBuffer> scratch;
      double err = 0;
      bool ok = false;
      try {
        check(hit->tactic, scratch, err, ok);
      } catch (const Error&) {
        KCUDA(cudaStreamSynchronize(s_));
      }
      if (ok) {
        l.tactic = hit->tactic;
        l.time_ms = hit->time_ms;
        l.scratch_bytes = layer->scratch_bytes();
        ++stats_.cached;
        return;
      }
      reject(hit->tactic + " (from the timing cache)", err);
      cands.erase(std::find(cands.begin(), cands.end(), hit->tactic));
    }
    ++stats_.tuned;
    std::vector<TimedTactic> timed = {{cands[0], ref_ms}};
    float fastest = ref_ms;
    std::ostringstream log;
    log << "  " << l.name << " [" << l.op << "] " << cands[0] << " " << ref_ms << " ms (reference)";
    for (size_t c = 1; c < cands.size(); ++c) {
      const std::string& t = cands[c];
      try {
        std::unique_ptr<DeviceBuffer> scratch;
        double err = 0;
        bool ok = false;
        const float first = check(t, scratch, err, ok);
        if (!ok) {
          reject(t, err);
          log << ", " << t << " REJECTED(" << err << ")";
          continue;
        }
        if (first > 2.f * fastest) {  // clearly slower: no need for a careful measurement
          log << ", " << t << " ~" << first;
          continue;
        }
        const float ms = careful_ms(*layer, io, first);
        log << ", " << t << " " << ms;
        timed.push_back({t, ms});
        fastest = std::min(fastest, ms);
      } catch (const Error& e) {
        // A candidate the library refuses at run time (unsupported shape or strides) is skipped; the
        // CUDA context is still healthy (sticky faults would fail the next check loudly).
        KCUDA(cudaStreamSynchronize(s_));
        log << ", " << t << " failed";
      }
    }
    if (fastest < ref_ms && ref_ms <= 2.f * fastest) {
      // The reference is in reach of the fastest: timed as carefully as the others, so a tie with it is
      // decided by the rule and not by its single run.
      layer->set_tactic(cands[0], h_);
      io.scratch = scratch0.p;
      timed[0].ms = careful_ms(*layer, io, ref_ms);
    }
    const TimedTactic& kept = timed[choose_tactic(timed)];
    layer->set_tactic(kept.name, h_);
    l.tactic = kept.name;
    l.time_ms = kept.ms;
    l.scratch_bytes = layer->scratch_bytes();
    cache.put(o_.device_key, sig, {kept.name, kept.ms});
    if (o_.verbose) std::fprintf(stderr, "%s -> %s\n", log.str().c_str(), kept.name.c_str());
  }
  // The median of five timings of the tactic set on `layer`, each of enough back-to-back runs to last
  // about 0.3 ms (`first`: the time of one run).
  float careful_ms(cuda::Layer& layer, const cuda::LayerIO& io, float first) {
    const int reps = std::clamp(static_cast<int>(0.3f / std::max(first, 1e-3f)), 1, 50);
    cuda::TimedGraph g = runs_graph(layer, io, reps);
    float samples[5];
    for (float& s : samples) s = g.replay()[0] / static_cast<float>(reps);
    std::sort(samples, samples + 5);
    return samples[2];
  }
  // GPU time per run of `reps` back-to-back runs after `warm` untimed ones on the stream (which also
  // surface launch errors and lazy set-up outside the capture).
  float time_runs(cuda::Layer& layer, const cuda::LayerIO& io, int reps, int warm) {
    for (int i = 0; i < warm; ++i) layer.enqueue(io, s_, h_);
    return runs_graph(layer, io, reps).replay()[0] / static_cast<float>(reps);
  }
  // `reps` runs as one timed part of a CUDA graph: the engine replays its layers as a graph, so the
  // host's cost of enqueueing a layer is not part of its time (it would be, timed on the stream, for
  // a small layer whose tactic spends longer on the host than on the GPU).
  cuda::TimedGraph runs_graph(cuda::Layer& layer, const cuda::LayerIO& io, int reps) {
    return cuda::TimedGraph(s_, [&](cudaStream_t s, const std::function<void()>& mark) {
      for (int i = 0; i < reps; ++i) layer.enqueue(io, s, h_);
      mark();
    });
  }

  BuildPlan& p_;
  TuneOptions o_;
  cudaStream_t s_ = nullptr;
  cuda::Handles h_;
  void* weights_ = nullptr;
  std::vector<cuda::TensorMeta> metas_;
  TuneStats stats_;
  std::vector<std::string> forced_seen_;

 public:
  std::vector<std::string> notes_;
};

}  // namespace

std::string timing_cache_key(const rt::DeviceInfo& dev) {
  // How the tuner times a tactic: GPU time of runs replayed as a CUDA graph.
  constexpr const char* kTimingMethod = "graph-replay";
  const std::string kernels = util::module_build_id(reinterpret_cast<const void*>(&cuda::create_layer));
  return rt::device_key(dev) + "|timed:" + kTimingMethod + "|kernels:" + (kernels.empty() ? "unknown" : kernels);
}

TuneStats tune(BuildPlan& p, const TuneOptions& o) {
  TimingCache cache;
  if (!o.cache_path.empty()) cache.load(o.cache_path);
  Tuner t(p, o);
  TuneStats s = t.run(cache);
  s.notes = t.notes_;
  if (!o.cache_path.empty()) cache.save(o.cache_path);
  return s;
}

}  // namespace kestrel::bld
