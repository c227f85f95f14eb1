// The letterbox of a whole batch in one launch: one thread per run of output pixels along a row (x
// fastest, so each of the three plane writes is coalesced), reading the 8-bit source through the CPU's
// resize plan.
// Integer arithmetic throughout, then v / 255 as an IEEE float division (what the CPU's table holds).
#include <cstdint>
#include <type_traits>

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

// One output pixel in source channel order, or the pad value where (x, y) lies outside the image.
__device__ __forceinline__ void pixel(const uint8_t* __restrict__ pixels, const LetterboxJob& j,
                                      const ResizeTap* __restrict__ taps, int x, int y, float (&f)[3]) {
  if (x < 0 || y < 0 || x >= j.new_w || y >= j.new_h) {
    f[0] = f[1] = f[2] = static_cast<float>(kPad) / 255.0f;
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
  f[0] = static_cast<float>(j.rgb ? v[0] : v[2]) / 255.0f;
  f[1] = static_cast<float>(v[1]) / 255.0f;
  f[2] = static_cast<float>(j.rgb ? v[2] : v[0]) / 255.0f;
}

// Pix consecutive pixels of one row per thread (4 where the size allows 16-byte stores: the kernel moves
// four float bytes out per source byte in, so its stores are most of its time).
template <int Pix>
__global__ void letterbox_kernel(const uint8_t* __restrict__ pixels, const LetterboxJob* __restrict__ jobs,
                                 const ResizeTap* __restrict__ taps, int n, int size, float* __restrict__ out) {
  using Vec = std::conditional_t<Pix == 4, float4, float>;
  const int b = blockIdx.y;
  const int plane = size * size;
  const int i = (blockIdx.x * blockDim.x + threadIdx.x) * Pix;  // Pix divides size: one row per thread
  if (i >= plane) return;
  float f[Pix][3];
  if (b >= n) {
#pragma unroll
    for (int k = 0; k < Pix; ++k) f[k][0] = f[k][1] = f[k][2] = static_cast<float>(kPad) / 255.0f;
  } else {
    const LetterboxJob j = jobs[b];
    const int x = i % size - j.pad_left, y = i / size - j.pad_top;
#pragma unroll
    for (int k = 0; k < Pix; ++k) pixel(pixels, j, taps, x + k, y, f[k]);
  }
  float* o = out + (size_t)b * 3 * plane + i;
#pragma unroll
  for (int c = 0; c < 3; ++c) {
    Vec v;
    if constexpr (Pix == 4) v = make_float4(f[0][c], f[1][c], f[2][c], f[3][c]);
    else v = f[0][c];
    *reinterpret_cast<Vec*>(o + (size_t)c * plane) = v;
  }
}

}  // namespace

void launch_letterbox(const uint8_t* pixels, const LetterboxJob* jobs, const ResizeTap* taps, int n, int batch,
                      int size, float* out, cudaStream_t stream) {
  KESTREL_CHECK(n >= 0 && n <= batch && size > 0, "letterbox: ", n, " images for batch ", batch, " at size ", size);
  const int threads = 256;
  // Four pixels per thread need a size divisible by 4 (then every plane starts 16-byte aligned, as the
  // engine's input buffer does).
  const bool quad = size % 4 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  const int per_thread = quad ? 4 : 1;
  const dim3 grid((size * size / per_thread + threads - 1) / threads, batch);
  if (quad) letterbox_kernel<4><<<grid, threads, 0, stream>>>(pixels, jobs, taps, n, size, out);
  else letterbox_kernel<1><<<grid, threads, 0, stream>>>(pixels, jobs, taps, n, size, out);
  KLAUNCH("letterbox");
}

}  // namespace kestrel::cuda
