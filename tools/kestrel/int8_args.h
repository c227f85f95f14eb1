#pragma once
// The INT8 options every verb that can make an INT8 engine shares (quantize, build, val, bench,
// predict, compare), and turning MODEL + those options into the quantized (Q/DQ) graph an INT8 engine
// runs: a Q/DQ ONNX is read with its own scales; any other model is calibrated here.
#include <CLI/CLI.hpp>

#include <string>

#include "kestrel/graph.h"
#include "kestrel/quant.h"

namespace kestrel::cli {

struct Int8Args {
  std::string calib, algo = "percentile", cache, rules;
  int calib_images = 128;
  bool calib_images_set = false;  // given explicitly: fewer available images is then an error
  bool algo_set = false;          // --calib-algo or --percentile given: a cache must have been made with it
  bool percentile_set = false;    // --percentile given: an error with another --calib-algo
  double percentile = 99.99;
  bool no_default_policy = false, int8_auto = false;
  double auto_target = quant::AutoPrecision{}.target;
  int auto_images = 8;
  bool progress = true;
};

// --calib, --calib-images, --calib-algo, --percentile, --calib-cache, --layer-precision,
// --no-default-policy, --int8-auto, --auto-target, --auto-images. Calibration needs --calib, or an
// existing --calib-cache alone.
void add_int8_options(CLI::App* app, Int8Args& a);

struct Int8Model {
  Graph plain;  // the float model with only BatchNorm folded (what `quantize -o` exports); quantize only
  Graph qdq;    // the fused Q/DQ graph engines and the CPU simulation run
  quant::QuantReport report;
  quant::Calibration calibration;
  bool from_qdq_file = false;  // MODEL was a Q/DQ ONNX: its scales were used, nothing calibrated
};

// Prints the calibration line and the precision summary on stdout.
Int8Model int8_model(const std::string& model, int64_t batch, int64_t imgsz, const Int8Args& a,
                     quant::LayerPrecision float_precision = quant::LayerPrecision::FP16);

// The INT8 options do nothing unless an INT8 engine is made: given without it, a UsageError naming
// them (`val m --calib dir` without --int8 would otherwise validate FP32 without a word).
void check_int8_options_used(const Int8Args& a, bool int8, const std::string& int8_flag = "--int8");

// Writes the model's Q/DQ ONNX (the plain graph with the decided Q/DQ and every layer's precision in
// the metadata): what `quantize -o` writes, and what engines of other batch sizes are built from.
void write_qdq_onnx(const Int8Model& m, const std::string& path);

// True when MODEL is an ONNX file with QuantizeLinear / DequantizeLinear nodes.
bool is_qdq_model(const std::string& model);

}  // namespace kestrel::cli
