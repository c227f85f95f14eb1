#pragma once
// OpenCV INTER_LINEAR as a plan: which arithmetic each output pixel uses and the fixed-point tap
// tables. The CPU resize (letterbox.cpp) and the GPU letterbox (src/backend/cuda/letterbox.cu) both
// execute this plan, so they agree bit for bit.
#include <cstdint>
#include <vector>

#ifdef __CUDACC__
#define KESTREL_HOST_DEVICE __host__ __device__
#else
#define KESTREL_HOST_DEVICE
#endif

namespace kestrel::yolo::detail {

// OpenCV's weights are 11-bit fixed point (INTER_RESIZE_COEF_BITS).
constexpr int kResizeCoefBits = 11;
constexpr int kResizeCoefScale = 1 << kResizeCoefBits;

// Per output coordinate: first source index and the two weights. 8 bytes, copied as is to the GPU.
struct ResizeTap {
  int32_t src;
  int16_t w0, w1;
};
static_assert(sizeof(ResizeTap) == 8);

enum class ResizeMode : int32_t {
  Copy = 0,      // same size: the source pixels
  Linear = 1,    // separable fixed-point bilinear (xt, yt, xmax)
  AreaHalf = 2,  // an exact 2x downscale, which cv::resize routes to INTER_AREA: rounded 2x2 means
};

struct ResizePlan {
  ResizeMode mode = ResizeMode::Copy;
  std::vector<ResizeTap> xt, yt;  // Linear only: one tap per output column / row
  int xmax = 0;                   // Linear: output columns from here on read only the edge pixel
};

ResizePlan resize_plan(int src_w, int src_h, int dst_w, int dst_h);

// One output value of the Linear mode from the two horizontal sums of its rows (OpenCV's
// VResizeLinearVec_32s8u): (b0 * (h0 >> 4)) >> 16, same for b1, add, (sum + 2) >> 2, clamp to 0..255.
KESTREL_HOST_DEVICE inline int vertical_linear(int b0, int h0, int b1, int h1) {
  const int v = (((b0 * (h0 >> 4)) >> 16) + ((b1 * (h1 >> 4)) >> 16) + 2) >> 2;
  return v < 0 ? 0 : (v > 255 ? 255 : v);
}

}  // namespace kestrel::yolo::detail
