// The letterbox of a whole batch in one launch: one thread per output pixel (x fastest, so each of the
// three plane writes is coalesced), reading the 8-bit source through the CPU's resize plan.
// Integer arithmetic throughout, then v / 255 as an IEEE float division (what the CPU's table holds).
#include "backend/cuda/check.h"
#include "backend/cuda/yolo_kernels.h"

namespace kestrel::cuda {

namespace {

using yolo::detail::ResizeTap;

constexpr int kPad = 114;

// Horizontal sum of one source row at output column dx (OpenCV's HResizeLinear, integer taps).
__device__ __forceinline__ int hsum(const uint8_t* row, const ResizeTap& t, int dx, int xmax, int c) {
  const uint8_t* s = row + t.src * 3 + c;
  return dx < xmax ? s[0] * t.w0 + s[3] * t.w1 : s[0] * yolo::detail::kResizeCoefScale;
}

__global__ void letterbox_kernel(const uint8_t* __restrict__ pixels, const LetterboxJob* __restrict__ jobs,
                                 const ResizeTap* __restrict__ taps, int n, int size, float* __restrict__ out) {
  const int b = blockIdx.y;
  const int plane = size * size;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= plane) return;
  float* o = out + (size_t)b * 3 * plane + i;
  const float pad = static_cast<float>(kPad) / 255.0f;
  if (b >= n) {
    o[0] = pad, o[plane] = pad, o[2 * plane] = pad;
    return;
  }
  const LetterboxJob j = jobs[b];
  const int x = i % size - j.pad_left, y = i / size - j.pad_top;
  if (x < 0 || y < 0 || x >= j.new_w || y >= j.new_h) {
    o[0] = pad, o[plane] = pad, o[2 * plane] = pad;
    return;
  }
  const uint8_t* img = pixels + j.pixels;
  const size_t stride = (size_t)j.src_w * 3;
  int v[3];  // in source channel order
  if (j.mode == static_cast<int>(yolo::detail::ResizeMode::Copy)) {
    const uint8_t* p = img + y * stride + x * 3;
    v[0] = p[0], v[1] = p[1], v[2] = p[2];
  } else if (j.mode == static_cast<int>(yolo::detail::ResizeMode::AreaHalf)) {
    const uint8_t* r0 = img + (2 * y) * stride + 2 * x * 3;
    const uint8_t* r1 = r0 + stride;
    for (int c = 0; c < 3; ++c) v[c] = (r0[c] + r0[c + 3] + r1[c] + r1[c + 3] + 2) >> 2;
  } else {
    const ResizeTap tx = taps[j.xtaps + x], ty = taps[j.ytaps + y];
    const int ra = min(max(ty.src, 0), j.src_h - 1), rb = min(max(ty.src + 1, 0), j.src_h - 1);
    const uint8_t* row0 = img + ra * stride;
    const uint8_t* row1 = img + rb * stride;
    for (int c = 0; c < 3; ++c)
      v[c] = yolo::detail::vertical_linear(ty.w0, hsum(row0, tx, x, j.xmax, c), ty.w1, hsum(row1, tx, x, j.xmax, c));
  }
  // Output planes are R, G, B.
  const int r = j.rgb ? v[0] : v[2], bl = j.rgb ? v[2] : v[0];
  o[0] = static_cast<float>(r) / 255.0f;
  o[plane] = static_cast<float>(v[1]) / 255.0f;
  o[2 * plane] = static_cast<float>(bl) / 255.0f;
}

}  // namespace

void launch_letterbox(const uint8_t* pixels, const LetterboxJob* jobs, const ResizeTap* taps, int n, int batch,
                      int size, float* out, cudaStream_t stream) {
  KESTREL_CHECK(n >= 0 && n <= batch && size > 0, "letterbox: ", n, " images for batch ", batch, " at size ", size);
  const int threads = 256;
  const dim3 grid((size * size + threads - 1) / threads, batch);
  letterbox_kernel<<<grid, threads, 0, stream>>>(pixels, jobs, taps, n, size, out);
  KLAUNCH("letterbox");
}

}  // namespace kestrel::cuda
