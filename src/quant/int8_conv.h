#pragma once
// The INT8 convolution of the simulation (internal to src/quant): exact int32 accumulation of int8
// inputs and weights, then the FP32 epilogue of the contract in include/kestrel/quant.h.
#include <cstdint>
#include <string>
#include <vector>

#include "backend/cpu/conv2d.h"
#include "kestrel/graph.h"

namespace kestrel::quant::detail {

// The CPU convolution's geometry; conv_geometry also checks what INT8 needs (int32 cannot overflow).
using ConvGeometry = cpu::Conv2d;
ConvGeometry conv_geometry(const Node& conv, const Shape& x, const Shape& w, const Shape& y);

// acc[N, M, OH, OW] = sum over the window of x_q * w_q, exactly. `w` holds the int8 weight codes as
// floats ([M, C/group * kh * kw]); floats because the sum runs on SGEMM in slices short enough that
// every partial sum is an integer below 2^24, which float represents exactly.
void int8_conv_accumulate(const int8_t* x_q, const float* w, const ConvGeometry& p, int32_t* acc);

enum class Act { None, Relu, LeakyRelu, Sigmoid, Silu, HardSwish, HardSigmoid, Tanh };
struct Epilogue {
  Act act = Act::None;
  float alpha = 0.f, beta = 0.f;
};
Epilogue parse_epilogue(const Node& conv);

// The residual added after the activation: float values, or int8 codes with their scale (added as
// fmaf((float)q, s, y), one rounding, as the GPU's epilogue does). Neither: no residual.
struct Residual {
  const float* f = nullptr;
  const int8_t* q = nullptr;
  float scale = 0.f;
};

// y = act(fmaf((float)acc, s_x * s_w[m], bias[m])) + residual, for every output element.
void int8_conv_epilogue(const int32_t* acc, float s_x, const float* s_w, const float* bias, const Epilogue& e,
                        const Residual& residual, const ConvGeometry& p, float* y);

}  // namespace kestrel::quant::detail
