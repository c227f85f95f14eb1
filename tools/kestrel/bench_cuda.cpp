// The CUDA engine under the benchmark loop, with trtexec's definitions: per inference, CUDA events
// around H2D, the engine's enqueue (GPU compute) and D2H; host time of the enqueue call. One execution
// context (and stream, and host thread) per --streams.
#include <cuda_runtime.h>

#include <chrono>
#include <cstring>
#include <mutex>
#include <random>

#include "bench_runner.h"
#include "cuda_cli.h"
#include "kestrel/runtime.h"
#include "nvml_sampler.h"
#include "util/progress.h"

namespace kestrel::cli {

namespace {
void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("bench: ", what, ": ", cudaGetErrorString(e));
}

// Dense per-SM, per-clock FLOPs of the units the engine's precision runs on.
double flops_per_sm_clock(int major, int minor, const std::string& precision, bool tf32, std::string* unit) {
  const bool hopper = major == 9, a100 = major == 8 && minor == 0, ampere_like = major == 8 && minor != 0;
  if (precision == "int8") {  // INT8 engines: INT8 tensor-core operations (their FP16 layers count as INT8 ops)
    *unit = "INT8 tensor cores, dense";
    return hopper ? 8192 : a100 ? 4096 : ampere_like ? 2048 : 0;
  }
  if (precision == "fp16") {
    *unit = "FP16 tensor cores, dense";
    return hopper ? 4096 : a100 ? 2048 : ampere_like ? 1024 : 0;
  }
  if (tf32) {
    *unit = "TF32 tensor cores, dense";
    return hopper ? 2048 : a100 ? 1024 : ampere_like ? 512 : 0;
  }
  *unit = "FP32 CUDA cores";
  return hopper ? 256 : a100 ? 128 : ampere_like ? 256 : 0;
}

struct StreamState {
  std::unique_ptr<ExecutionContext> ctx;
  cudaStream_t stream = nullptr;
  void *d_in = nullptr, *d_out = nullptr, *h_in = nullptr, *h_out = nullptr;
  size_t in_bytes = 0, out_bytes = 0;
  cudaEvent_t ev[4]{};
  std::vector<Iteration> iterations;
};

void wait(cudaEvent_t e, bool spin) {
  if (spin) {
    cudaError_t s;
    while ((s = cudaEventQuery(e)) == cudaErrorNotReady) {
    }
    check(s, "cudaEventQuery");
  } else {
    check(cudaEventSynchronize(e), "cudaEventSynchronize");
  }
}

Iteration run_once(StreamState& s, const BenchOptions& o) {
  using Clock = std::chrono::steady_clock;
  Iteration it;
  check(cudaEventRecord(s.ev[0], s.stream), "cudaEventRecord");
  if (o.data_transfers) check(cudaMemcpyAsync(s.d_in, s.h_in, s.in_bytes, cudaMemcpyHostToDevice, s.stream), "H2D copy");
  check(cudaEventRecord(s.ev[1], s.stream), "cudaEventRecord");
  const auto t0 = Clock::now();
  s.ctx->enqueue({s.d_in}, {s.d_out}, s.stream);
  it.enqueue = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  check(cudaEventRecord(s.ev[2], s.stream), "cudaEventRecord");
  if (o.data_transfers) check(cudaMemcpyAsync(s.h_out, s.d_out, s.out_bytes, cudaMemcpyDeviceToHost, s.stream), "D2H copy");
  check(cudaEventRecord(s.ev[3], s.stream), "cudaEventRecord");
  wait(s.ev[3], o.spin_wait);
  float ms[3];
  for (int k = 0; k < 3; ++k) check(cudaEventElapsedTime(&ms[k], s.ev[k], s.ev[k + 1]), "cudaEventElapsedTime");
  it.h2d = ms[0];
  it.compute = ms[1];
  it.d2h = ms[2];
  it.latency = ms[0] + ms[1] + ms[2];
  return it;
}
}  // namespace

BenchResult bench_cuda(const Engine& engine, const BenchOptions& o) {
  using Clock = std::chrono::steady_clock;
  const EngineInfo& info = engine.info();
  KESTREL_CHECK(info.inputs.size() == 1 && info.outputs.size() == 1, "bench: the engine must have one input and one output");
  BenchResult r;
  r.backend = "cuda";
  r.device = info.gpu_name;
  r.model = info.model_name;
  r.precision = precision_name(info.precision);
  r.batch = o.batch ? o.batch : info.batch;
  r.streams = o.streams;
  r.cuda_graph = o.cuda_graph;
  r.data_transfers = o.data_transfers;
  int dev = 0, sms = 0, clock_khz = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  check(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev), "cudaDeviceGetAttribute");
  std::string unit;
  const double per_clock = flops_per_sm_clock(info.cc_major, info.cc_minor, r.precision, info.tf32, &unit);
  if (per_clock > 0 && clock_khz > 0) {
    r.peak_tflops = per_clock * sms * clock_khz * 1e3 / 1e12;
    r.peak_basis = std::to_string(sms) + " SMs x " + std::to_string(clock_khz / 1000) + " MHz x " +
                   std::to_string(static_cast<int>(per_clock)) + (r.precision == "int8" ? " ops" : " FLOP") + "/clock/SM, " + unit;
  }

  std::vector<StreamState> states(static_cast<size_t>(o.streams));
  std::mt19937 rng(0);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  for (auto& s : states) {
    s.ctx = engine.create_execution_context(runtime_config());
    s.ctx->set_cuda_graphs(o.cuda_graph);
    s.ctx->set_batch(r.batch);
    check(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking), "cudaStreamCreate");
    s.in_bytes = static_cast<size_t>(shape_numel(s.ctx->tensor_shape(info.inputs[0].name))) * 4;
    s.out_bytes = static_cast<size_t>(shape_numel(s.ctx->tensor_shape(info.outputs[0].name))) * 4;
    check(cudaMalloc(&s.d_in, s.in_bytes), "cudaMalloc");
    check(cudaMalloc(&s.d_out, s.out_bytes), "cudaMalloc");
    check(cudaMallocHost(&s.h_in, s.in_bytes), "cudaMallocHost");
    check(cudaMallocHost(&s.h_out, s.out_bytes), "cudaMallocHost");
    float* in = static_cast<float*>(s.h_in);
    for (size_t i = 0; i < s.in_bytes / 4; ++i) in[i] = u(rng);  // real data: never time zeros
    check(cudaMemcpy(s.d_in, s.h_in, s.in_bytes, cudaMemcpyHostToDevice), "H2D copy");
    for (auto& e : s.ev) check(cudaEventCreate(&e), "cudaEventCreate");
  }
  // Warm-up: clocks up, CUDA graphs captured, lazy module loading done.
  const auto warm_end = Clock::now() + std::chrono::duration<double, std::milli>(o.warmup_ms);
  do
    for (auto& s : states) run_once(s, o);
  while (Clock::now() < warm_end);

  NvmlSampler nvml(dev);
  nvml.start();
  util::ProgressBar bar("bench", static_cast<int64_t>(o.iterations) * o.streams, "inf");
  std::mutex bar_mutex;
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  std::exception_ptr error;
  std::mutex error_mutex;
  for (auto& s : states)
    threads.emplace_back([&, sp = &s] {
      try {
        check(cudaSetDevice(dev), "cudaSetDevice");
        while (static_cast<int>(sp->iterations.size()) < o.iterations ||
               std::chrono::duration<double>(Clock::now() - start).count() < o.duration_s) {
          sp->iterations.push_back(run_once(*sp, o));
          std::lock_guard<std::mutex> lock(bar_mutex);
          bar.advance();
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        error = std::current_exception();
      }
    });
  for (auto& t : threads) t.join();
  r.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  bar.finish();
  nvml.stop();
  if (error) std::rethrow_exception(error);
  for (auto& s : states) r.iterations.insert(r.iterations.end(), s.iterations.begin(), s.iterations.end());
  r.inferences = r.iterations.size();
  r.power_w_mean = nvml.mean_power_w();
  r.power_w_max = nvml.max_power_w();
  r.util_pct_mean = nvml.mean_utilization_pct();
  if (o.profile) {  // after the main figures, so the per-layer events cannot perturb them
    StreamState& s = states.front();
    r.layer_profile = s.ctx->profile({s.d_in}, {s.d_out}, std::max(1, std::min(o.iterations, 20)));
  }
  for (auto& s : states) {
    for (auto& e : s.ev) cudaEventDestroy(e);
    cudaFree(s.d_in);
    cudaFree(s.d_out);
    cudaFreeHost(s.h_in);
    cudaFreeHost(s.h_out);
    s.ctx.reset();
    cudaStreamDestroy(s.stream);
  }
  add_warnings(r);
  return r;
}

}  // namespace kestrel::cli
