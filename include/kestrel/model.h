#pragma once
// Opening a model for inference, in one place for the CLI, kestrel::Detector and the Python package.
//
// MODEL is an ONNX file, a built-in zoo name (yolov8n, yolo11s, ...) or a Kestrel engine file. The
// backend is one of
//   auto  the CUDA backend when this build has it and a GPU is usable, else the CPU reference backend;
//   cpu   the CPU reference backend: fp32, or int8 as the exact simulation of the GPU's INT8 engine;
//   cuda  a CUDA engine: an engine file is loaded, anything else is built for this GPU in memory.
// An engine file always selects CUDA (it holds GPU code only). Every choice that cannot run (fp16 on
// the CPU, CUDA in a CPU-only build or on a machine without a GPU, an engine file with --backend cpu)
// is a kestrel::UsageError with one line that says what to do instead.
#include <cstdint>
#include <memory>
#include <string>

#include "kestrel/graph.h"
#include "kestrel/inference.h"
#include "kestrel/quant.h"
#include "kestrel/runtime.h"

namespace kestrel {

enum class Backend { Auto, Cpu, Cuda };
const char* backend_name(Backend b);              // "auto", "cpu", "cuda"
Backend parse_backend(const std::string& name);  // throws UsageError listing the valid names

// What this process can run.
struct BackendAvailability {
  bool cuda_built = false;  // compiled with the CUDA backend
  bool gpu = false;         // ... and a CUDA device is usable
  std::string why_not;      // when !gpu: the reason, for messages ("no CUDA device found", ...)
};
// Queried once per process (the CUDA runtime is initialised on the first call in a CUDA build).
const BackendAvailability& backend_availability();

// True when the file exists and starts with the engine file's magic bytes (no GPU needed).
bool is_engine_file(const std::string& path);

// The backend `model` runs on when `requested` is asked for with `precision` (fp32 | fp16 | int8).
// Pure: `engine_file` and `available` are passed in, so the rule is testable on any machine.
Backend choose_backend(const std::string& model, bool engine_file, Backend requested, const std::string& precision,
                       const BackendAvailability& available);

// INT8 calibration settings (the CLI's --calib, --calib-algo, ... options). Calibration needs `calib`,
// or an existing `cache` alone; a Q/DQ model needs neither.
struct Int8Options {
  std::string calib;                 // folder of calibration images (training images)
  std::string algo = "percentile";   // percentile | minmax | entropy | mse
  std::string cache;                 // calibration cache: reused when everything matches, else written
  std::string rules;                 // "PATTERN:int8|fp16|fp32,..." layer precision rules
  int calib_images = 128;
  bool calib_images_set = false;     // given explicitly: fewer available images is then an error
  bool algo_set = false;             // algo or percentile given: an existing cache must have been made with it
  bool percentile_set = false;       // percentile given: an error with another algo
  double percentile = 99.99;
  bool no_default_policy = false;    // quantize the detection head's output convs too
  bool int8_auto = false;            // promote the most sensitive layers until auto_target is met
  double auto_target = quant::AutoPrecision{}.target;
  // 32: on 8 images the measure overstated agreement on unseen images by ~0.01 and missed the target
  // there; on 32 it holds on unseen images (bench/RESULTS.md), at four times the measuring time.
  int auto_images = 32;
  int bias_images = 0;               // bias correction on this many calibration images (0: none)
  int fp16_early_stride = quant::QuantOptions{}.high_res_fp16_stride;  // default policy: early convs in fp16
  bool fp16_early_stride_set = false;
  bool progress = true;              // progress bars on stderr while calibrating
};

struct ModelOptions {
  Backend backend = Backend::Auto;
  std::string precision = "fp32";  // fp32 | fp16 (cuda) | int8 (cuda; cpu: the exact simulation)
  int64_t batch = 0;               // 0: the model's own (an engine file: its max_batch); within an engine's profile
  // Built engines only: a batch profile (BuilderConfig's min/opt/max_batch; exclusive with batch).
  int64_t min_batch = 0, opt_batch = 0, max_batch = 0;
  RuntimeConfig runtime;           // cuda: the execution context's settings
  int64_t imgsz = 0;               // 0: the model's own, or 640; for models with dynamic spatial dims
  Int8Options int8;
  std::string timing_cache;        // cuda builds: tactic timing cache file (read, then updated); "" = none
  bool verbose = false;            // calibration and precision summary lines on stdout (the CLI's output)
};

// The engine for `model` with `options` (see the top of this file for the backend rules).
std::unique_ptr<InferenceEngine> open_model(const std::string& model, const ModelOptions& options = {});

// ---------------------------------------------------------------------------------------------------
// INT8 models: MODEL + calibration options -> the quantized (Q/DQ) graph INT8 engines run. A Q/DQ ONNX
// is read with its own scales; any other model is calibrated.

struct Int8Model {
  Graph plain;  // the float model with only BatchNorm folded (what `quantize -o` exports); calibrated models only
  Graph qdq;    // the fused Q/DQ graph engines and the CPU simulation run
  quant::QuantReport report;
  quant::Calibration calibration;
  bool from_qdq_file = false;  // MODEL was a Q/DQ ONNX: its scales were used, nothing calibrated
};

// `verbose` prints the calibration line and the precision summary on stdout.
Int8Model int8_model(const std::string& model, int64_t batch, int64_t imgsz, const Int8Options& options,
                     quant::LayerPrecision float_precision = quant::LayerPrecision::FP16, bool verbose = true);

// Writes the model's Q/DQ ONNX (the plain graph with the decided Q/DQ and every layer's precision in
// the metadata): what `quantize -o` writes, and what engines of other batch sizes are built from.
void write_qdq_onnx(const Int8Model& m, const std::string& path);

// True when MODEL is an ONNX file with QuantizeLinear / DequantizeLinear nodes.
bool is_qdq_model(const std::string& model);

}  // namespace kestrel
