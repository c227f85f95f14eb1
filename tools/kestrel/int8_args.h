#pragma once
// The INT8 options every verb that can make an INT8 engine shares (quantize, build, val, bench,
// predict, compare). Turning MODEL + those options into the quantized (Q/DQ) graph an INT8 engine runs
// is the library's int8_model (kestrel/model.h).
#include <CLI/CLI.hpp>

#include <string>

#include "kestrel/graph.h"
#include "kestrel/model.h"
#include "kestrel/quant.h"

namespace kestrel::cli {

// The settings live in the library (kestrel/model.h); the CLI spells them as options.
using Int8Args = Int8Options;

// --calib, --calib-images, --calib-algo, --percentile, --calib-cache, --layer-precision,
// --no-default-policy, --int8-auto, --auto-target, --auto-images. Calibration needs --calib, or an
// existing --calib-cache alone.
void add_int8_options(CLI::App* app, Int8Args& a);

// The calibration and policy options given, comma-separated ("" when none).
std::string int8_options_given(const Int8Args& a);

// The INT8 options do nothing unless an INT8 engine is made: given without it, a UsageError naming
// them (`val m --calib dir` without --int8 would otherwise validate FP32 without a word).
void check_int8_options_used(const Int8Args& a, bool int8, const std::string& int8_flag = "--int8");

}  // namespace kestrel::cli
