// Execution contexts side by side (a benchmark, not a test): one engine, N execution contexts on N
// threads, each running inferences one request at a time (enqueue, then synchronize its stream, as a
// server's worker does) on its own stream and its own buffers. Reports images/s of 1 context on 1
// thread and of N contexts on N threads, their ratio, and checks that every context's output is bit
// for bit the single context's (exit 1 otherwise).
//   contexts_bench MODEL|ENGINE [--fp16] [--threads 4] [--seconds 3 | --iters N] [--warmup 20] [--batch B]
//                  [--eager] [--seed 0] [--timing-cache FILE] [--json FILE]
// MODEL: an ONNX file or a built-in name, built for this GPU in memory; ENGINE: an engine file. Every
// input holds the same numbers (uniform [0, 1) from --seed), so every output must be the same. Outputs
// are poisoned (NaN) after the warm-up, so only the timed runs can have written what is compared.
// Exit 0: done, outputs identical; 1: an output differed, or a failure; 2: a wrong command line.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kestrel/cuda_model.h"
#include "kestrel/error.h"
#include "kestrel/runtime.h"
#include "util/file_io.h"

using namespace kestrel;
using Clock = std::chrono::steady_clock;

namespace {

const char* kUsage =
    "usage: contexts_bench MODEL|ENGINE [--fp16] [--threads 4] [--seconds 3 | --iters N] [--warmup 20] [--batch B]\n"
    "                      [--eager] [--seed 0] [--timing-cache FILE] [--json FILE]\n";

[[noreturn]] void usage_error(const std::string& m) {
  std::fprintf(stderr, "contexts_bench: %s (contexts_bench --help)\n", m.c_str());
  std::exit(2);
}

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) fail("CUDA error in ", what, ": ", cudaGetErrorString(e));
}

struct Options {
  std::string model, json, timing_cache;
  bool fp16 = false, graphs = true;
  int threads = 4, warmup = 20;
  double seconds = 3;
  int64_t iters = 0, batch = 0;
  uint32_t seed = 0;
};

int64_t parse_int(const std::string& flag, const std::string& v, int64_t lo, int64_t hi) {
  size_t used = 0;
  int64_t n = 0;
  try {
    n = std::stoll(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty() || n < lo || n > hi)
    usage_error(flag + " takes an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], not '" + v + "'");
  return n;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else if (a == "--fp16") o.fp16 = true;
    else if (a == "--eager") o.graphs = false;
    else if (a == "--threads") o.threads = static_cast<int>(parse_int(a, value(), 1, 256));
    else if (a == "--warmup") o.warmup = static_cast<int>(parse_int(a, value(), 1, 1000000));
    else if (a == "--iters") o.iters = parse_int(a, value(), 1, int64_t{1} << 40);
    else if (a == "--batch") o.batch = parse_int(a, value(), 1, 4096);
    else if (a == "--seed") o.seed = static_cast<uint32_t>(parse_int(a, value(), 0, UINT32_MAX));
    else if (a == "--seconds") {
      const std::string v = value();
      char* end = nullptr;
      o.seconds = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || !(o.seconds > 0 && o.seconds <= 3600)) usage_error("--seconds takes a number in (0, 3600], not '" + v + "'");
    } else if (a == "--timing-cache") o.timing_cache = value();
    else if (a == "--json") o.json = value();
    else if (!a.empty() && a[0] == '-') usage_error("unknown option " + a);
    else if (o.model.empty()) o.model = a;
    else usage_error("one model only (got " + o.model + " and " + a + ")");
  }
  if (o.model.empty()) usage_error("no model given");
  return o;
}

// One context with its own stream (the context's), input and output.
struct Worker {
  std::unique_ptr<ExecutionContext> ctx;
  void* in = nullptr;
  void* out = nullptr;
  std::vector<double> latency_ms;
  Clock::time_point end;
  std::string error;
  ~Worker() {
    if (in) cudaFree(in);
    if (out) cudaFree(out);
  }
};

struct Phase {
  int contexts = 0;
  int64_t inferences = 0;
  double seconds = 0, images_per_s = 0, median_ms = 0, p95_ms = 0;
  std::vector<int64_t> per_context;
};

// Runs workers[0..n) on n threads: warm-up, poison, then all start together and run until the
// deadline (or --iters each).
Phase run_phase(std::vector<Worker>& workers, int n, const Options& o, size_t out_bytes, int64_t batch) {
  std::latch ready(n);
  std::atomic<bool> go{false};
  Clock::time_point deadline;  // written before `go`, read after it
  auto body = [&](Worker& w) {
    const cudaStream_t s = w.ctx->stream();
    const std::vector<const void*> in{w.in};
    const std::vector<void*> out{w.out};
    try {
      for (int i = 0; i < o.warmup; ++i) w.ctx->enqueue(in, out, s);  // the first captures the CUDA graph
      check(cudaMemsetAsync(w.out, 0xFF, out_bytes, s), "cudaMemsetAsync");  // NaN: what the runs must overwrite
      check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
    } catch (const std::exception& e) {
      w.error = e.what();
    }
    ready.count_down();
    while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
    if (!w.error.empty()) return;
    try {
      w.latency_ms.clear();
      for (int64_t k = 0; o.iters ? k < o.iters : Clock::now() < deadline; ++k) {
        const auto t0 = Clock::now();
        w.ctx->enqueue(in, out, s);
        check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
        w.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    } catch (const std::exception& e) {
      w.error = e.what();
    }
    w.end = Clock::now();
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) threads.emplace_back(body, std::ref(workers[i]));
  ready.wait();
  const auto t0 = Clock::now();
  deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  Phase p;
  p.contexts = n;
  std::vector<double> all;
  Clock::time_point end = t0;
  for (int i = 0; i < n; ++i) {
    if (!workers[i].error.empty()) fail("context ", i, ": ", workers[i].error);
    if (workers[i].latency_ms.empty()) fail("context ", i, " ran no inference in the time given");
    p.per_context.push_back(static_cast<int64_t>(workers[i].latency_ms.size()));
    p.inferences += p.per_context.back();
    all.insert(all.end(), workers[i].latency_ms.begin(), workers[i].latency_ms.end());
    end = std::max(end, workers[i].end);
  }
  std::sort(all.begin(), all.end());
  p.seconds = std::chrono::duration<double>(end - t0).count();
  p.images_per_s = static_cast<double>(p.inferences * batch) / p.seconds;
  p.median_ms = all[all.size() / 2];
  p.p95_ms = all[std::min(all.size() - 1, all.size() * 95 / 100)];
  return p;
}

std::vector<float> download(const Worker& w, size_t out_bytes) {
  std::vector<float> h(out_bytes / sizeof(float));
  check(cudaMemcpy(h.data(), w.out, out_bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  return h;
}

std::string phase_json(const Phase& p) {
  std::string s = "{\"contexts\": " + std::to_string(p.contexts) + ", \"threads\": " + std::to_string(p.contexts) +
                  ", \"inferences\": " + std::to_string(p.inferences);
  char b[256];
  std::snprintf(b, sizeof(b), ", \"seconds\": %.4f, \"images_per_s\": %.2f, \"latency_ms\": {\"median\": %.4f, \"p95\": %.4f}",
                p.seconds, p.images_per_s, p.median_ms, p.p95_ms);
  s += b;
  s += ", \"per_context_inferences\": [";
  for (size_t i = 0; i < p.per_context.size(); ++i) s += (i ? ", " : "") + std::to_string(p.per_context[i]);
  return s + "]}";
}

std::string json_str(const std::string& v) {
  std::string s = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') s += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    s += c;
  }
  return s + "\"";
}

void print_phase(const char* name, const Phase& p) {
  std::printf("%s: %.1f images/s (%lld inferences in %.2f s; latency median %.3f ms, p95 %.3f ms)", name, p.images_per_s,
              static_cast<long long>(p.inferences), p.seconds, p.median_ms, p.p95_ms);
  if (p.per_context.size() > 1) {
    std::printf("; per context:");
    for (int64_t c : p.per_context) std::printf(" %lld", static_cast<long long>(c));
  }
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    if (!o.json.empty()) util::check_writable(o.json, "--json");
    ModelOptions mo;
    mo.backend = Backend::Cuda;
    mo.precision = o.fp16 ? "fp16" : "fp32";
    mo.batch = o.batch;
    mo.timing_cache = o.timing_cache;
    if (const char* c = std::getenv("KESTREL_TIMING_CACHE"); mo.timing_cache.empty() && c) mo.timing_cache = c;
    const std::unique_ptr<Engine> engine = open_cuda_engine(o.model, mo);
    const EngineInfo& info = engine->info();
    if (info.inputs.size() != 1 || info.outputs.size() != 1)
      fail("contexts_bench runs engines of one input and one output; ", o.model, " has ", info.inputs.size(), " and ",
           info.outputs.size());
    const Shape in_shape = info.inputs[0].shape;
    const size_t in_bytes = shape_numel(in_shape) * sizeof(float);
    const size_t out_bytes = shape_numel(info.outputs[0].shape) * sizeof(float);
    const int64_t batch = in_shape.empty() ? 1 : in_shape[0];
    std::vector<float> host(in_bytes / sizeof(float));
    std::mt19937 rng(o.seed);
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (float& v : host) v = u(rng);  // never time on zeros
    std::vector<Worker> workers(static_cast<size_t>(o.threads));
    for (auto& w : workers) {
      w.ctx = engine->create_execution_context();
      w.ctx->set_cuda_graphs(o.graphs);
      check(cudaMalloc(&w.in, in_bytes), "cudaMalloc");
      check(cudaMalloc(&w.out, out_bytes), "cudaMalloc");
      check(cudaMemcpy(w.in, host.data(), in_bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
    }
    std::printf("%s: %s %s batch %lld, input %s, %s, %d contexts\n", o.model.c_str(), info.gpu_name.c_str(),
                precision_name(info.precision), static_cast<long long>(batch), shape_str(in_shape).c_str(),
                o.graphs ? "CUDA graphs" : "eager", o.threads);
    const Phase one = run_phase(workers, 1, o, out_bytes, batch);
    const std::vector<float> ref = download(workers[0], out_bytes);
    if (std::any_of(ref.begin(), ref.end(), [](float v) { return std::isnan(v); }))
      fail("the single context's output still holds NaN (the poison, or the model's) after its runs");
    print_phase("1 context x 1 thread", one);
    const Phase many = run_phase(workers, o.threads, o, out_bytes, batch);
    char name[64];
    std::snprintf(name, sizeof(name), "%d contexts x %d threads", o.threads, o.threads);
    print_phase(name, many);
    std::vector<int> differ;
    std::string mismatches = "[";
    for (int i = 0; i < o.threads; ++i) {
      const std::vector<float> got = download(workers[static_cast<size_t>(i)], out_bytes);
      if (std::memcmp(got.data(), ref.data(), out_bytes) == 0) continue;
      size_t n = 0;
      double worst = 0;
      for (size_t k = 0; k < got.size(); ++k)
        if (std::memcmp(&got[k], &ref[k], sizeof(float)) != 0) {
          ++n;
          worst = std::max(worst, std::isnan(got[k]) ? INFINITY : std::fabs(static_cast<double>(got[k]) - ref[k]));
        }
      std::printf("context %d: %zu of %zu output values differ from the single context's (largest difference %g)\n", i, n,
                  got.size(), worst);
      differ.push_back(i);
      mismatches += (mismatches.size() > 1 ? ", " : "") + std::string("{\"context\": ") + std::to_string(i) +
                    ", \"values\": " + std::to_string(n) + "}";
    }
    mismatches += "]";
    const double ratio = many.images_per_s / one.images_per_s;
    std::printf("ratio %.2f (%d x %d over 1 x 1); outputs: %s\n", ratio, o.threads, o.threads,
                differ.empty() ? "every context bit-identical to the single context"
                               : (std::to_string(differ.size()) + " context(s) differ").c_str());
    if (!o.json.empty()) {
      char b[128];
      std::snprintf(b, sizeof(b), "%.4f", ratio);
      const std::string j = "{\"model\": " + json_str(o.model) + ", \"gpu\": " + json_str(info.gpu_name) +
                            ", \"precision\": \"" + precision_name(info.precision) + "\", \"batch\": " + std::to_string(batch) +
                            ", \"input\": " + json_str(shape_str(in_shape)) + ", \"cuda_graphs\": " + (o.graphs ? "true" : "false") +
                            ", \"warmup\": " + std::to_string(o.warmup) + ", \"single\": " + phase_json(one) +
                            ", \"multi\": " + phase_json(many) + ", \"ratio\": " + b +
                            ", \"identical\": " + (differ.empty() ? "true" : "false") + ", \"mismatches\": " + mismatches + "}\n";
      util::write_file(o.json, j);
    }
    return differ.empty() ? 0 : 1;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "contexts_bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "contexts_bench: %s\n", e.what());
    return 1;
  }
}
