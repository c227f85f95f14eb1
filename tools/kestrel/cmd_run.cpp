// kestrel run MODEL --input x.bin --output y.bin: one inference on raw little-endian float32 tensors.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "cli_checks.h"
#include "command.h"
#include "engine_arg.h"
#include "kestrel/cpu_backend.h"
#include "model_arg.h"
#include "util/file_io.h"
#ifdef KESTREL_HAS_CUDA
#include "cuda_cli.h"
#endif

namespace kestrel::cli {

namespace {
struct RunArgs {
  std::string model, input, output, backend = "auto";
  int64_t batch = 0, imgsz = 0;
};

std::string output_path(const std::string& base, size_t i) {
  if (i == 0) return base;
  const auto dot = base.rfind('.');
  return dot == std::string::npos ? base + "." + std::to_string(i) : base.substr(0, dot) + "." + std::to_string(i) + base.substr(dot);
}

int run_run(const RunArgs& a) {
  check_output(a.output, "--output", {{a.model, "the model"}, {a.input, "the input tensor"}});
  if (resolve_backend(EngineSpec{a.model, a.backend, "fp32", a.batch, a.imgsz}) == Backend::Cuda) {
#ifdef KESTREL_HAS_CUDA
    return run_cuda(a.model, a.input, a.output, a.batch, a.imgsz);
#else
    fail("internal: the CUDA backend was chosen in a build without it");
#endif
  }
  Graph g = load_graph(a.model, a.batch, a.imgsz);
  KESTREL_CHECK(g.inputs.size() == 1, "the model has ", g.inputs.size(), " inputs; kestrel run feeds exactly one");
  const Value& in = g.value(g.inputs[0]);
  check_imgsz_applied(a.imgsz, in.shape, a.model);
  KESTREL_CHECK(in.dtype == DType::F32, "input '", in.name, "' is ", dtype_name(in.dtype), "; kestrel run feeds float32");
  HostTensor x(DType::F32, in.shape);
  if (a.input.empty()) {
    // No input file: a deterministic test pattern in [0, 1] (smooth gradients, like a letterboxed photo).
    const int64_t hw = in.shape.size() == 4 ? in.shape[2] * in.shape[3] : x.numel();
    for (int64_t i = 0; i < x.numel(); ++i)
      x.data<float>()[i] = 0.5f + 0.5f * std::sin(0.001f * static_cast<float>(i % hw) + static_cast<float>(i / hw));
    std::printf("input: synthetic test pattern %s\n", shape_str(in.shape).c_str());
  } else {
    const std::vector<char> bytes = util::read_file(a.input);
    if (bytes.size() != x.nbytes())
      fail(a.input, " has ", bytes.size(), " bytes; input '", in.name, "' ", shape_str(in.shape), " float32 needs ",
           x.nbytes(), " bytes");
    std::memcpy(x.raw(), bytes.data(), bytes.size());
    for (float v : x.span<float>())
      if (!std::isfinite(v)) fail(a.input, " contains NaN or infinite values");
  }

  CpuExecutor exec(g);
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<HostTensor> ys = exec.run({x});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  for (size_t i = 0; i < ys.size(); ++i) {
    HostTensor y = ys[i].dtype() == DType::F32 ? ys[i] : ys[i].cast(DType::F32);
    const std::string path = a.output.empty() ? "(not written)" : output_path(a.output, i);
    if (i > 0) check_output(path, "--output", {{a.model, "the model"}, {a.input, "the input tensor"}});
    if (!a.output.empty()) util::write_file(path, y.raw(), y.nbytes());
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    for (float v : y.span<float>()) mn = std::min<double>(mn, v), mx = std::max<double>(mx, v), sum += v;
    std::printf("%s %s -> %s  (min %.4g, max %.4g, mean %.4g)\n", g.outputs[i].c_str(), shape_str(y.shape()).c_str(),
                path.c_str(), mn, mx, y.numel() ? sum / static_cast<double>(y.numel()) : 0.0);
  }
  std::printf("cpu backend: %.1f ms\n", ms);
  return 0;
}
}  // namespace

Command add_run(CLI::App& root) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* app = root.add_subcommand("run", "Run one inference on a raw float32 tensor file");
  app->add_option("model", args->model, "ONNX file, built-in model name or engine file")->required();
  app->add_option("--input,-i", args->input, "Input tensor: raw little-endian float32, the model's input shape (default: a synthetic test pattern)");
  app->add_option("--output,-o", args->output, "Output tensor file (raw float32; extra outputs get .1, .2, ...)");
  add_backend_option(app, args->backend);
  app->add_option("--batch", args->batch, "Batch size to bind")->check(CLI::Range(1, 4096));
  app->add_option("--imgsz", args->imgsz, "Input size for models with dynamic spatial dims")->check(CLI::Range(32, 8192));
  return {app, [args] { return run_run(*args); }};
}

}  // namespace kestrel::cli
