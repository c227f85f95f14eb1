#pragma once
// Launchers of Kestrel's own convolution kernels (conv_direct.cu, conv_igemm.cu). Weights are OHWI
// ([K][KH][KW][C/group], dense), bias float32; the epilogue is act(conv + bias) + residual.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <string>
#include <vector>

namespace kestrel::cuda {

// Activations of fused layers (attr "activation", ConvParams::act); the CPU reference uses the same
// formulas (device_common.cuh).
enum Act : int { kActNone = 0, kActRelu, kActLeaky, kActSigmoid, kActSilu, kActHardSwish, kActHardSigmoid, kActTanh };

struct ConvParams {
  int N, C, H, W, K, OH, OW, KH, KW, sh, sw, ph, pw, dh, dw, group;
  long long xs[4], ys[4], rs[4];  // element strides of x, y, residual as [n, c, h, w]
  int act;
  float alpha, beta;
};

// Reference: one thread per output element, any strides, any group; T = float or __half.
template <typename TX, typename TW, typename TY>
void launch_conv_direct(const ConvParams& p, const TX* x, const TW* w, const float* bias, const TY* r, TY* y,
                        bool k_fastest, cudaStream_t stream);
// Depthwise (group == C == K), channels-last input/output (unit channel stride).
template <typename T>
void launch_conv_depthwise(const ConvParams& p, const T* x, const T* w, const float* bias, const T* r, T* y,
                           cudaStream_t stream);
// act(tmp + bias) + r -> y, where tmp is a dense NHWC [N, OH, OW, K] result (cuDNN's output).
template <typename T>
void launch_conv_epilogue(const ConvParams& p, const T* tmp, const float* bias, const T* r, T* y, cudaStream_t stream);
// The same for FP16 with K, y's and r's pixel strides multiples of 8, 16-byte aligned, channels-last
// (y + m * ldy + k): 8 channels per thread.
void launch_conv_epilogue_vec(const ConvParams& p, const __half* tmp, const float* bias, const __half* r, __half* y,
                              long long ldy, long long ldr, cudaStream_t stream);

// Tensor-core implicit GEMM (FP16 in, FP32 accumulate): channels-last x (C % 8 == 0, pixel stride
// ldx % 8 == 0, 16-byte aligned), group 1, even K and output/residual pixel strides.
struct IgemmConfig {
  const char* name;
  int bm, bn;
};
const std::vector<IgemmConfig>& igemm_configs();
// Tactic names for a problem: every tile config, plus split-K variants (_sk2/4/8) when it has few tiles.
std::vector<std::string> igemm_tactics(const ConvParams& p);
int64_t igemm_scratch_bytes(const std::string& tactic, const ConvParams& p);  // split-K partials
int64_t igemm_counters(const std::string& tactic, const ConvParams& p);       // ints, zeroed once
void launch_conv_igemm(const std::string& tactic, const ConvParams& p, const void* x, const void* w, const float* bias,
                       const void* r, void* y, void* ws, int* counters, cudaStream_t stream);
void prepare_igemm(const std::string& tactic);  // one-time kernel attributes (shared memory > 48 KB)

// The first convolution of a network (few input channels): reads the input in any layout and dtype
// float32 (no layout conversion layer before it), all K <= 64 outputs of a pixel per thread, weights
// in shared memory, channels-last output. K must be 16, 32, 48 or 64.
template <typename TY>
void launch_conv_stem(const ConvParams& p, const float* x, const float* w, const float* bias, TY* y, cudaStream_t stream);
bool conv_stem_supports(const ConvParams& p);
// The same stem on the tensor cores (conv_stem_mma.cu), FP16 output: 3 channels, 3x3, stride 2, pad 1 on
// rows of unit stride whose width is a multiple of 4, K of 16, 32, 48 or 64; x 16-byte and y 4-byte
// aligned (conv_stem_mma_pointers_ok; elsewhere the FP32 stem kernel runs instead).
bool conv_stem_mma_supports(const ConvParams& p);
bool conv_stem_mma_pointers_ok(const float* x, const void* y);
void launch_conv_stem_mma(const ConvParams& p, const float* x, const float* w, const float* bias, __half* y,
                          cudaStream_t stream);

}  // namespace kestrel::cuda
