#pragma once
// The 2-D convolution geometry and im2col the CPU backend's Conv (float) and the INT8 simulation's
// integer convolution (src/quant) share.
#include <cstdint>

#include "kestrel/graph.h"

namespace kestrel::cpu {

struct Conv2d {
  int64_t n, c, h, w, m, oh, ow, kh, kw, sh, sw, dh, dw, ph, pw, group;
  int64_t cg() const { return c / group; }   // input channels per group
  int64_t mg() const { return m / group; }   // output channels per group
  int64_t k() const { return cg() * kh * kw; }  // reduction length
  int64_t hw() const { return oh * ow; }
};

// From the node's attributes (window_geometry, as every windowed op) and the x / W / y shapes.
Conv2d conv2d_geometry(const Node& node, const Shape& x, const Shape& w, const Shape& y);

// Rows (c, ki, kj) for the `cg` channels at x, columns the output pixels, as float; taps outside the
// image are 0 (the quantized zero too).
// Instantiated for float and int8_t (conv.cpp).
template <typename T>
void im2col(const T* x, const Conv2d& p, int64_t cg, float* col);

}  // namespace kestrel::cpu
