// The INT8 layers of the CUDA backend (kestrel.QuantizeInt8, kestrel.ConvInt8) against the contract in
// include/kestrel/quant.h, as the CPU simulation computes it (quant::detail::int8_conv_accumulate and
// int8_conv_epilogue, then fp16 rounding or int8 quantization). Each layer is made from hand-built
// tensor metadata and every tactic it offers runs twice on the same inputs, the output buffer
// poisoned with a different byte pattern each time: an element never written, or written
// differently, shows up as a difference between the runs; bytes outside the output view (the other
// channels of a wider buffer) must keep the poison.
//   quantize        bit exact (every fp16 value, for several scales)
//   conv, fp16 out  exact activations (none / relu / leaky_relu): bit exact; approximate ones (silu):
//                   >= 99.9% within 1 fp16 ulp (or within the activation's own approximation error),
//                   all within 2 ulp + that error
//   conv, int8 out  |code difference| <= 1 everywhere, < 0.5% of codes differ (none where exact)
//   cuDNN tactics   (cudnn8_N: the epilogue in cuDNN's own rounding) held to the approximate
//                   criteria for every activation
// Residuals are fp16 or int8 codes (attribute r_scale, added as fmaf(q, r_scale, v)).
// X is always int8 codes (the builder quantizes a float activation with a kestrel.QuantizeInt8 layer);
// a kestrel.ConvInt8 given an fp16 X or the stem's attribute x_scale is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <random>
#include <vector>

#include <cudnn.h>

#include "backend/cuda/layer.h"
#include "gpu_test_util.h"
#include "layer_meta.h"
#include "quant/int8_conv.h"

namespace {

using namespace kestrel;
using cuda::TensorMeta;

using test::channels_last_meta;
using test::DevBuf;
using test::dense_meta;


float half_value(float f) { return f16_to_f32(f32_to_f16(f)); }

// The contract's quantization; NaN (which the contract leaves open) gives 0, as on the GPU.
int8_t int8_code(float v, float s) {
  const float q = std::nearbyint(v / s);  // float division, round half to even
  return std::isnan(q) ? 0 : static_cast<int8_t>(std::clamp(q, -128.f, 127.f));
}

// Order-preserving integer of an fp16 bit pattern: ulp distance = difference.
int half_ordinal(uint16_t h) { return (h & 0x8000) ? -static_cast<int>(h & 0x7fff) : static_cast<int>(h & 0x7fff); }
bool half_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

// The library handles an engine's context holds: with a cuDNN handle, the layers offer their cudnn8_N
// tactics too (without one they have none to offer). Needs a GPU.
struct GpuHandles {
  cuda::Handles h;
  GpuHandles() { EXPECT_EQ(cudnnCreate(&h.cudnn), CUDNN_STATUS_SUCCESS); }
  ~GpuHandles() {
    if (h.cudnn) cudnnDestroy(h.cudnn);
  }
  GpuHandles(const GpuHandles&) = delete;
  GpuHandles& operator=(const GpuHandles&) = delete;
};

// Runs `layer` with every tactic it offers; `check(tactic, bytes)` judges the output buffer of the first
// run. The second run (other poison) must give identical bytes in the view and the poison elsewhere.
template <typename Check>
void run_every_tactic(cuda::Layer& layer, const std::vector<const void*>& in, DevBuf& out, size_t out_offset,
                      const std::vector<bool>& in_view, Check check) {
  GpuHandles gpu;
  cuda::Handles& handles = gpu.h;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (const std::string& t : layer.tactics(handles)) {
    SCOPED_TRACE("tactic " + t);
    try {
      layer.set_tactic(t, handles);
    } catch (const Error& e) {  // a cuDNN plan the heuristics list may fail to compile: the tuner skips it too
      std::printf("[int8] tactic %s unavailable: %s\n", t.c_str(), e.what());
      ASSERT_EQ(t.rfind("cudnn8_", 0), 0u) << "only cuDNN plans may be unavailable";
      continue;
    }
    DevBuf scratch(static_cast<size_t>(layer.scratch_bytes()));
    cuda::LayerIO io;
    io.in = in;
    io.out = {static_cast<char*>(out.p) + out_offset};
    io.scratch = scratch.p;
    std::vector<uint8_t> got[2];
    const uint8_t poison[2] = {0xFF, 0x7F};  // fp16: two NaNs; int8: -1 and 127
    for (int run = 0; run < 2; ++run) {
      ASSERT_EQ(cudaMemset(out.p, poison[run], out.bytes), cudaSuccess);
      layer.enqueue(io, stream, handles);  // (cuDNN refuses buffers off 16 bytes: no such case below)
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      ASSERT_EQ(cudaGetLastError(), cudaSuccess);
      got[run] = out.download<uint8_t>();
    }
    int64_t differ = 0, clobbered = 0;
    for (size_t i = 0; i < got[0].size(); ++i) {
      if (in_view[i]) differ += got[0][i] != got[1][i];
      else clobbered += got[0][i] != poison[0] || got[1][i] != poison[1];
    }
    EXPECT_EQ(differ, 0) << "output bytes unwritten or not deterministic";
    EXPECT_EQ(clobbered, 0) << "bytes outside the output view were written";
    check(t, got[0]);
  }
  cudaStreamDestroy(stream);
}

// ---------------------------------------------------------------------------------------------------
// kestrel.QuantizeInt8

struct QuantCase {
  const char* name;
  DType dt;
  Shape shape;        // [N, C, H, W]
  bool channels_last;
  int64_t x_ld;       // channels-last source: pixel stride (>= C)
  int64_t y_ld;       // output pixel stride (>= C)
  float scale;
  bool every_half = false;  // x holds every fp16 bit pattern (N * C * H * W == 65536)
};

const std::vector<QuantCase>& quant_cases() {
  static const std::vector<QuantCase> c = {
      {"f32_nchw", DType::F32, {2, 24, 7, 9}, false, 0, 24, 0.02f},
      {"f16_nhwc_slice_vec", DType::F16, {1, 32, 5, 6}, true, 40, 48, 0.0625f},
      {"f16_nchw", DType::F16, {2, 16, 4, 5}, false, 0, 16, 0.03125f},
      {"f16_nhwc_c3", DType::F16, {1, 3, 6, 7}, true, 3, 5, 0.017f},
      {"f32_nhwc_slice", DType::F32, {2, 8, 3, 3}, true, 12, 8, 0.0625f},
      // Exhaustive over fp16 (the values an INT8 layer's int8 output is quantized from), vectorized and
      // generic kernels, scales with and without exact ties.
      {"f16_every_value_vec_s0173", DType::F16, {1, 8, 64, 128}, true, 8, 8, 0.0173f, true},
      {"f16_every_value_vec_s4_127", DType::F16, {1, 8, 64, 128}, true, 8, 8, 4.f / 127.f, true},
      {"f16_every_value_vec_s05", DType::F16, {1, 8, 64, 128}, true, 8, 8, 0.5f, true},
      {"f16_every_value_vec16_s0173", DType::F16, {1, 16, 64, 64}, true, 16, 16, 0.0173f, true},
      {"f16_every_value_nchw_s1_3", DType::F16, {1, 8, 64, 128}, false, 0, 8, 1.f / 3.f, true},
      {"f16_every_value_nchw_s1e3", DType::F16, {1, 8, 64, 128}, false, 0, 8, 1e-3f, true},
  };
  return c;
}

class Int8Quantize : public ::testing::TestWithParam<size_t> {};

TEST_P(Int8Quantize, BitExact) {
  const QuantCase& qc = quant_cases()[GetParam()];
  const Shape& s = qc.shape;
  const int64_t N = s[0], C = s[1], H = s[2], W = s[3];
  TensorMeta xm = qc.channels_last ? channels_last_meta(qc.dt, s, qc.x_ld) : dense_meta(qc.dt, s);
  TensorMeta ym = channels_last_meta(DType::I8, s, qc.y_ld);
  cuda::LayerSpec spec;
  spec.name = qc.name;
  spec.op = "kestrel.QuantizeInt8";
  spec.attrs.set("scale", qc.scale);
  spec.in = {&xm};
  spec.out = {&ym};
  std::unique_ptr<cuda::Layer> layer = cuda::create_layer(spec);
  KESTREL_REQUIRE_GPU();

  // Values: half uniform, half on the grid of scale / 2 (ties, which round to even), both running past
  // the int8 range so the saturation is exercised.
  std::mt19937 rng(11 + static_cast<uint32_t>(GetParam()));
  std::uniform_real_distribution<float> u(-150.f * qc.scale, 150.f * qc.scale);
  std::uniform_int_distribution<int> tie(-300, 300);
  const int64_t span = xm.span();
  ASSERT_TRUE(!qc.every_half || span == 65536);
  std::vector<float> xf(static_cast<size_t>(span), 0.f);
  for (int64_t i = 0; i < span; ++i) xf[i] = (i % 2) ? u(rng) : static_cast<float>(tie(rng)) * 0.5f * qc.scale;
  std::vector<uint16_t> xh(xf.size());
  for (size_t i = 0; i < xf.size(); ++i) xh[i] = qc.every_half ? static_cast<uint16_t>(i) : f32_to_f16(xf[i]);
  const bool half = qc.dt == DType::F16;
  DevBuf x = half ? DevBuf(xh) : DevBuf(xf);
  DevBuf y(static_cast<size_t>(ym.span()));
  std::vector<bool> in_view(y.bytes, false);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) in_view[n * ym.strides[0] + c + h * ym.strides[2] + w * ym.strides[3]] = true;

  run_every_tactic(*layer, {x.p}, y, 0, in_view, [&](const std::string&, const std::vector<uint8_t>& got) {
    int64_t wrong = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) {
            const int64_t xi = n * xm.strides[0] + c * xm.strides[1] + h * xm.strides[2] + w * xm.strides[3];
            const float v = half ? f16_to_f32(xh[xi]) : xf[xi];
            const int8_t want = int8_code(v, qc.scale);
            const int8_t have = static_cast<int8_t>(got[n * ym.strides[0] + c + h * ym.strides[2] + w * ym.strides[3]]);
            if (have != want && wrong++ < 5)
              ADD_FAILURE() << "(" << n << "," << c << "," << h << "," << w << ") x " << v << ": " << int(have) << " vs "
                            << int(want);
          }
    EXPECT_EQ(wrong, 0);
  });
}

INSTANTIATE_TEST_SUITE_P(Int8, Int8Quantize, ::testing::Range<size_t>(0, quant_cases().size()),
                         [](const auto& info) { return std::string(quant_cases()[info.param].name); });

// ---------------------------------------------------------------------------------------------------
// kestrel.ConvInt8

struct ConvCase {
  const char* name;
  int64_t n, c, h, w, k, ksize, stride, pad, dil, group;
  bool bias, residual;
  const char* act;
  bool out_int8;
  int64_t x_ld = 0;   // input pixel stride (0: C)
  int64_t y_ld = 0;   // output pixel stride (0: K): a wider buffer holds the output as a channel slice ...
  int64_t y_off = 0;  // ... starting at this channel
  bool res_int8 = false;  // the residual as int8 codes (attribute r_scale) ...
  int64_t r_ld = 0;       // ... with this pixel stride (0: K; more: a channel slice, as in C2f's concat)
};

// igemm8 applies where group == 1, C % 16 == 0 and the input's pixel stride is a multiple of 16.
const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> c = {
      {"k1_c64_k80_silu", 1, 64, 10, 10, 80, 1, 1, 0, 1, 1, true, false, "silu", false},
      {"k3_c16_k16_n2_silu_res", 2, 16, 12, 12, 16, 3, 1, 1, 1, 1, true, true, "silu", false},
      {"k3s2_c32_k64_silu_int8", 1, 32, 15, 13, 64, 3, 2, 1, 1, 1, true, false, "silu", true},
      {"k3_c128_k32_nobias_none", 1, 128, 8, 8, 32, 3, 1, 1, 1, 1, false, false, "none", false},
      {"k1_c128_k64_n2_res_none_int8", 2, 128, 9, 9, 64, 1, 1, 0, 1, 1, true, true, "none", true},
      {"k3_c256_k64_silu_splitk", 1, 256, 6, 6, 64, 3, 1, 1, 1, 1, true, false, "silu", false},
      {"k3_c64_k16_n2_relu_res", 2, 64, 11, 7, 16, 3, 1, 1, 1, 1, true, true, "relu", false},
      {"k3s2_c64_k80_leaky_int8", 2, 64, 14, 14, 80, 3, 2, 1, 1, 1, true, false, "leaky_relu", true},
      {"k3_c64_k64_80x80_res_int8", 1, 64, 80, 80, 64, 3, 1, 1, 1, 1, true, true, "silu", true},
      {"k3_dil2_c32_k32_none", 1, 32, 13, 13, 32, 3, 1, 2, 2, 1, true, false, "none", false},
      {"k3_c32_in_slice_silu", 1, 32, 10, 10, 32, 3, 1, 1, 1, 1, true, false, "silu", false, 48},
      {"slice_f16_vec", 1, 32, 9, 9, 32, 3, 1, 1, 1, 1, true, true, "silu", false, 0, 48, 8},
      {"slice_f16_odd", 1, 16, 7, 7, 16, 1, 1, 0, 1, 1, true, true, "none", false, 0, 21, 3},
      {"slice_int8_vec", 1, 64, 8, 8, 64, 3, 1, 1, 1, 1, true, true, "silu", true, 0, 96, 16},
      {"slice_int8_odd_k24", 1, 32, 8, 8, 24, 3, 1, 1, 1, 1, false, false, "silu", true, 0, 29, 5},
      // int8 residuals (a bottleneck reading its input's codes), vector and element epilogues.
      {"res8_k3_c32_silu", 1, 32, 10, 10, 32, 3, 1, 1, 1, 1, true, true, "silu", false, 0, 0, 0, true},
      {"res8_k1_c64_n2_int8", 2, 64, 9, 9, 64, 1, 1, 0, 1, 1, true, true, "silu", true, 0, 0, 0, true},
      {"res8_slices_int8_vec", 1, 64, 8, 8, 64, 3, 1, 1, 1, 1, true, true, "silu", true, 0, 96, 16, true, 96},
      {"res8_slices_f16_none", 1, 16, 7, 7, 16, 1, 1, 0, 1, 1, true, true, "none", false, 0, 21, 3, true, 21},
      {"res8_relu_exact_int8", 1, 32, 9, 9, 32, 3, 1, 1, 1, 1, false, true, "relu", true, 0, 0, 0, true, 48},
      // No tensor cores: the network's first convolution, channel counts off the 16 grid, groups.
      {"direct_c3_k16_s2", 1, 3, 32, 32, 16, 3, 2, 1, 1, 1, true, false, "silu", false},
      {"direct_c24_k32_int8", 2, 24, 10, 10, 32, 3, 1, 1, 1, 1, true, true, "silu", true},
      {"direct_c24_res8", 2, 24, 10, 10, 32, 3, 1, 1, 1, 1, true, true, "relu", false, 0, 0, 0, true},
      {"direct_grouped", 1, 32, 9, 9, 32, 3, 1, 1, 1, 4, true, false, "relu", false},
      {"direct_depthwise", 1, 16, 9, 9, 16, 3, 2, 1, 1, 16, true, false, "none", true},
      // vec4: YOLO11's depthwise head and attention convs, C3k2's 8-channel bottleneck, groups, slices.
      {"vec4_depthwise_c64_silu_int8", 2, 64, 10, 10, 64, 3, 1, 1, 1, 64, true, false, "silu", true},
      {"vec4_depthwise_s2_f16", 1, 32, 11, 11, 32, 3, 2, 1, 1, 32, true, false, "none", false},
      {"vec4_depthwise_relu_res_f16", 2, 16, 7, 9, 16, 3, 1, 1, 1, 16, true, true, "relu", false},
      {"vec4_c8_k16_silu_res8_int8", 2, 8, 12, 12, 16, 3, 1, 1, 1, 1, true, true, "silu", true, 0, 0, 0, true},
      {"vec4_c8_k16_relu_exact_int8", 1, 8, 9, 9, 16, 3, 1, 1, 1, 1, true, false, "relu", true},
      {"vec4_grouped_g4_res8_f16", 1, 32, 9, 9, 32, 3, 1, 1, 1, 4, true, true, "silu", false, 0, 0, 0, true},
      {"vec4_c8_x_slice_f16", 1, 8, 9, 9, 16, 3, 1, 1, 1, 1, true, false, "silu", false, 12},
      {"vec4_c8_y_slice_odd_f16", 1, 8, 7, 7, 8, 3, 1, 1, 1, 1, true, false, "none", false, 0, 21, 3},
      {"vec4_depthwise_y_slice_int8", 1, 16, 8, 8, 16, 3, 1, 1, 1, 16, false, false, "relu", true, 0, 29, 5},
  };
  return c;
}

quant::detail::Act act_of(const std::string& a) {
  using quant::detail::Act;
  if (a == "relu") return Act::Relu;
  if (a == "leaky_relu") return Act::LeakyRelu;
  if (a == "silu") return Act::Silu;
  return Act::None;
}

class Int8Conv : public ::testing::TestWithParam<size_t> {};

TEST_P(Int8Conv, MatchesContract) {
  const ConvCase& cc = conv_cases()[GetParam()];
  const int64_t N = cc.n, C = cc.c, H = cc.h, W = cc.w, K = cc.k, R = cc.ksize, cg = C / cc.group;
  const int64_t OH = (H + 2 * cc.pad - cc.dil * (R - 1) - 1) / cc.stride + 1;
  const int64_t OW = (W + 2 * cc.pad - cc.dil * (R - 1) - 1) / cc.stride + 1;
  const int64_t ldx = cc.x_ld ? cc.x_ld : C, ldy = cc.y_ld ? cc.y_ld : K;
  const Shape yshape = {N, K, OH, OW};

  // The layer, from metadata alone (runs without a GPU).
  TensorMeta xm = channels_last_meta(DType::I8, {N, C, H, W}, ldx);
  TensorMeta wm = dense_meta(DType::I8, {K, R, R, cg});
  TensorMeta sm = dense_meta(DType::F32, {K});
  TensorMeta bm = dense_meta(DType::F32, {K});
  const int64_t ldr = cc.r_ld ? cc.r_ld : K;
  TensorMeta rm = channels_last_meta(cc.res_int8 ? DType::I8 : DType::F16, yshape, ldr);
  const float r_scale = 1.7f / 127.f;  // not a simple ratio of out_scale: no systematic int8 ties
  TensorMeta ym = channels_last_meta(cc.out_int8 ? DType::I8 : DType::F16, yshape, ldy);
  const float out_scale = 4.f / 127.f;
  cuda::LayerSpec spec;
  spec.name = cc.name;
  spec.op = "kestrel.ConvInt8";
  using I = std::vector<int64_t>;
  spec.attrs.set("kernel_shape", I{R, R});
  spec.attrs.set("strides", I{cc.stride, cc.stride});
  spec.attrs.set("pads", I{cc.pad, cc.pad, cc.pad, cc.pad});
  spec.attrs.set("dilations", I{cc.dil, cc.dil});
  spec.attrs.set("group", cc.group);
  spec.attrs.set("activation", std::string(cc.act));
  spec.attrs.set("alpha", 0.1f);
  if (cc.out_int8) spec.attrs.set("out_scale", out_scale);
  if (cc.res_int8) spec.attrs.set("r_scale", r_scale);
  spec.in = {&xm, &wm, &sm, cc.bias ? &bm : nullptr, cc.residual ? &rm : nullptr};
  spec.out = {&ym};
  std::unique_ptr<cuda::Layer> layer = cuda::create_layer(spec);
  cuda::Handles handles;
  const std::vector<std::string> tactics = layer->tactics(handles);
  ASSERT_FALSE(tactics.empty());
  EXPECT_EQ(tactics[0], "direct");
  const bool igemm = cc.group == 1 && C % 16 == 0 && ldx % 16 == 0;
  const bool depthwise = cc.group == C && K == C;
  const bool vec4 = K % 4 == 0 && ldx % 4 == 0 && (depthwise || (cg % 4 == 0 && (K / cc.group) % 4 == 0)) &&
                    R * R * (depthwise ? K : cg * K) <= 48 * 1024;  // its weights in shared memory
  const auto offered = [&](const char* prefix) {
    return std::any_of(tactics.begin(), tactics.end(), [&](const std::string& t) { return t.rfind(prefix, 0) == 0; });
  };
  EXPECT_EQ(offered("igemm8_"), igemm) << "tensor-core tactics offered where they apply, only there";
  EXPECT_EQ(offered("vec4"), vec4) << "the four-channel kernel offered where it applies, only there";
  KESTREL_REQUIRE_GPU();

  // Inputs: int8 codes over the full range; per-channel scales that keep the outputs around +-2
  // (an int8 product has a standard deviation of ~5500), so the int8 output uses its range and clips.
  std::mt19937 rng(1234 + static_cast<uint32_t>(GetParam()));
  std::uniform_int_distribution<int> xcode(-128, 127), wcode(-127, 127);
  std::uniform_real_distribution<float> unit(0.5f, 1.5f), sym(-1.f, 1.f);
  const float s_x = 0.02f;
  std::vector<int8_t> xq(static_cast<size_t>(N * C * H * W));  // NCHW, the reference's layout
  for (auto& v : xq) v = static_cast<int8_t>(xcode(rng));
  // Channels-last, whole pixels of the wider buffer; the foreign channels hold 0x55, which stands out
  // if it is read.
  std::vector<int8_t> x_dev(static_cast<size_t>(N * H * W * ldx), 0x55);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) x_dev[(n * H * W + y * W + x) * ldx + c] = xq[((n * C + c) * H + y) * W + x];
  std::vector<int8_t> w_ohwi(static_cast<size_t>(K * R * R * cg));
  std::vector<float> w_ref(w_ohwi.size());  // [K][cg][R][R] as floats, the reference's form
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t i = 0; i < R; ++i)
        for (int64_t j = 0; j < R; ++j) {
          const int8_t v = static_cast<int8_t>(wcode(rng));
          w_ohwi[((k * R + i) * R + j) * cg + c] = v;
          w_ref[((k * cg + c) * R + i) * R + j] = v;
        }
  const float target = 2.f / (s_x * 5500.f * std::sqrt(static_cast<float>(cg * R * R)));
  std::vector<float> s_w(static_cast<size_t>(K)), scale(s_w.size()), bias(s_w.size());
  for (int64_t k = 0; k < K; ++k) {
    s_w[k] = target * unit(rng);
    scale[k] = s_x * s_w[k];  // rounded to float, as the builder stores it
    bias[k] = sym(rng);
  }
  std::vector<uint16_t> r_dev(static_cast<size_t>(rm.span()));
  std::vector<int8_t> rq_dev(static_cast<size_t>(N * OH * OW * ldr), 0x55);  // foreign channels: 0x55
  std::vector<float> r_ref(static_cast<size_t>(N * K * OH * OW));  // NCHW
  std::vector<int8_t> rq_ref(r_ref.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t y = 0; y < OH; ++y)
        for (int64_t x = 0; x < OW; ++x) {
          const uint16_t h = f32_to_f16(2.f * sym(rng));
          const int8_t q = static_cast<int8_t>(xcode(rng));
          const size_t ri = static_cast<size_t>(((n * K + k) * OH + y) * OW + x);
          if (!cc.res_int8) r_dev[((n * OH + y) * OW + x) * K + k] = h;
          rq_dev[static_cast<size_t>(((n * OH + y) * OW + x) * ldr + k)] = q;
          r_ref[ri] = f16_to_f32(h);
          rq_ref[ri] = q;
        }

  // The contract on the CPU: y (with the residual), and the activation alone (the scale of its
  // approximation error) and the pre-activation value.
  const quant::detail::ConvGeometry g{N, C, H, W, K, OH, OW, R, R, cc.stride, cc.stride, cc.dil, cc.dil, cc.pad, cc.pad, cc.group};
  std::vector<int32_t> acc(static_cast<size_t>(N * K * OH * OW));
  quant::detail::int8_conv_accumulate(xq.data(), w_ref.data(), g, acc.data());
  quant::detail::Epilogue epi;
  epi.act = act_of(cc.act);
  epi.alpha = 0.1f;
  epi.beta = 0.5f;
  std::vector<float> y_ref(acc.size()), y_pre(acc.size());
  quant::detail::int8_conv_epilogue(acc.data(), s_x, s_w.data(), cc.bias ? bias.data() : nullptr, epi,
                                    !cc.residual   ? quant::detail::Residual{}
                                    : cc.res_int8 ? quant::detail::Residual{nullptr, rq_ref.data(), r_scale}
                                                  : quant::detail::Residual{r_ref.data()},
                                    g, y_ref.data());
  quant::detail::int8_conv_epilogue(acc.data(), s_x, s_w.data(), cc.bias ? bias.data() : nullptr, quant::detail::Epilogue{},
                                    {}, g, y_pre.data());
  const bool exact_act = epi.act != quant::detail::Act::Silu;

  DevBuf x(x_dev), w(w_ohwi), sc(scale), b(bias), r(r_dev), rq(rq_dev);
  const size_t esize = cc.out_int8 ? 1 : 2;
  const int64_t y_elems = ym.span() + cc.y_off + (ldy - K - cc.y_off);  // whole pixels of the wider buffer
  DevBuf y(static_cast<size_t>(y_elems) * esize);
  std::vector<bool> in_view(y.bytes, false);
  auto y_index = [&](int64_t n, int64_t k, int64_t oy, int64_t ox) { return cc.y_off + ((n * OH + oy) * OW + ox) * ldy + k; };
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox)
          for (size_t e = 0; e < esize; ++e) in_view[y_index(n, k, oy, ox) * esize + e] = true;
  const std::vector<const void*> in = {x.p, w.p, sc.p, cc.bias ? b.p : nullptr,
                                       !cc.residual ? nullptr : cc.res_int8 ? rq.p : r.p};

  int cudnn_tactics = 0;
  run_every_tactic(*layer, in, y, static_cast<size_t>(cc.y_off) * esize, in_view,
                   [&](const std::string& tactic, const std::vector<uint8_t>& bytes) {
    cudnn_tactics += tactic.rfind("cudnn8_", 0) == 0;
    const int64_t total = N * K * OH * OW;
    int64_t inexact = 0, beyond_1ulp = 0, hard = 0;
    double worst = 0;  // |got - want| / (ulp + activation tolerance), the worst element
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t oy = 0; oy < OH; ++oy)
          for (int64_t ox = 0; ox < OW; ++ox) {
            const size_t ri = static_cast<size_t>(((n * K + k) * OH + oy) * OW + ox);
            const uint16_t want_h = f32_to_f16(y_ref[ri]);
            const int64_t yi = y_index(n, k, oy, ox);
            // tanh.approx-based SiLU: |error| <= ~2.5e-4 * |pre-activation|.
            const float act_tol = exact_act ? 0.f : 3e-4f * std::fabs(y_pre[ri]);
            if (cc.out_int8) {
              const int8_t want = int8_code(f16_to_f32(want_h), out_scale);
              const int8_t have = static_cast<int8_t>(bytes[yi]);
              const int d = std::abs(int(have) - int(want));
              inexact += d != 0;
              if (d > 1 && hard++ < 5)
                ADD_FAILURE() << tactic << " (" << n << "," << k << "," << oy << "," << ox << "): code " << int(have)
                              << " vs " << int(want);
              continue;
            }
            uint16_t have_h;
            std::memcpy(&have_h, &bytes[yi * 2], 2);
            if (half_nan(have_h)) {
              if (hard++ < 5) ADD_FAILURE() << tactic << " (" << n << "," << k << "," << oy << "," << ox << "): NaN";
              continue;
            }
            const int ulps = std::abs(half_ordinal(have_h) - half_ordinal(want_h));
            const float have = f16_to_f32(have_h), want = f16_to_f32(want_h);
            const float ulp = std::fabs(f16_to_f32(static_cast<uint16_t>(want_h + 1)) - want);  // want's ulp
            const float err = std::fabs(have - want);
            inexact += ulps != 0;
            if (ulps > 1 && err > act_tol) ++beyond_1ulp;
            worst = std::max(worst, static_cast<double>(err) / (ulp + act_tol));
            if (err > 2 * ulp + act_tol && hard++ < 5)
              ADD_FAILURE() << tactic << " (" << n << "," << k << "," << oy << "," << ox << "): " << have << " vs " << want
                            << " (pre-activation " << y_pre[ri] << ")";
          }
    std::printf("[int8] %-30s %-22s %s inexact %.4f%%, beyond 1 ulp %.4f%%, worst %.2f\n", cc.name, tactic.c_str(),
                cc.out_int8 ? "int8" : "fp16", 100.0 * inexact / total, 100.0 * beyond_1ulp / total, worst);
    EXPECT_EQ(hard, 0);
    // cuDNN's fused epilogue multiplies and adds the bias in two roundings (ours: one fmaf) and
    // converts to int8 with 1 / out_scale: last-bit differences that move a value across an fp16
    // rounding boundary or an int8 tie, rarely.
    const bool cudnn = tactic.rfind("cudnn8_", 0) == 0;
    if (exact_act && !cudnn) {
      EXPECT_EQ(inexact, 0) << "exact activation: the contract is bit exact";
    } else if (cc.out_int8) {
      // cuDNN quantizes its float result, not the fp16-rounded value the contract quantizes: the
      // half-ulp move crosses a code boundary for ~1-2% of the values (never by more than one code).
      EXPECT_LT(inexact, (cudnn ? 0.03 : 0.005) * total);
    } else {
      EXPECT_LE(beyond_1ulp, total / 1000);
    }
  });
  // cuDNN's fused INT8 plans exist for these (a YOLO layer's form): make sure they were among the tactics.
  const std::string act = cc.act;
  const int64_t rsize = cc.res_int8 ? 1 : 2;
  const bool aligned = ldy * static_cast<int64_t>(esize) % 16 == 0 && cc.y_off * static_cast<int64_t>(esize) % 16 == 0 &&
                       (!cc.residual || ldr * rsize % 16 == 0);
  if (igemm && aligned && (act == "silu" || act == "relu" || act == "none") && C % 4 == 0 && K % 4 == 0) {
    EXPECT_GT(cudnn_tactics, 0) << "no cudnn8 tactic offered";
  }
}

INSTANTIATE_TEST_SUITE_P(Int8, Int8Conv, ::testing::Range<size_t>(0, conv_cases().size()),
                         [](const auto& info) { return std::string(conv_cases()[info.param].name); });

// Configuration errors are one-line kestrel::Errors naming the node, GPU or not.
TEST(Int8ConvErrorsHost, RejectsWrongDtypes) {
  TensorMeta xm = channels_last_meta(DType::F16, {1, 16, 8, 8}, 16);
  TensorMeta wm = dense_meta(DType::I8, {16, 1, 1, 16});
  TensorMeta sm = dense_meta(DType::F32, {16});
  TensorMeta ym = channels_last_meta(DType::I8, {1, 16, 8, 8}, 16);
  cuda::LayerSpec spec;
  spec.name = "bad";
  spec.op = "kestrel.ConvInt8";
  spec.attrs.set("kernel_shape", std::vector<int64_t>{1, 1});
  spec.in = {&xm, &wm, &sm, nullptr, nullptr};
  spec.out = {&ym};
  spec.attrs.set("out_scale", 0.05f);
  // Refused with a kestrel::Error whose message names the op, the node and each of `words`.
  auto expect_refused = [&](const char* why, std::initializer_list<const char*> words) {
    EXPECT_THROW(
        {
          try {
            cuda::create_layer(spec);
          } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("kestrel.ConvInt8 node 'bad'"), std::string::npos) << why << ": " << what;
            for (const char* w : words) EXPECT_NE(what.find(w), std::string::npos) << why << ": " << what;
            throw;
          }
        },
        Error)
        << why;
  };
  expect_refused("fp16 input", {"input X must be int8", "got f16"});
  spec.attrs.set("x_scale", 0.5f);
  expect_refused("fp16 input with x_scale", {"input X must be int8", "got f16"});  // no quantizing on the fly
  xm.dtype = DType::I8;
  expect_refused("x_scale on a non-stem conv", {"x_scale", "kestrel.ConvInt8Stem"});
  spec.attrs.erase("x_scale");
  spec.attrs.erase("out_scale");
  EXPECT_THROW(cuda::create_layer(spec), Error);  // int8 output without out_scale
  spec.attrs.set("out_scale", 0.05f);
  EXPECT_NO_THROW(cuda::create_layer(spec));
  TensorMeta rm = channels_last_meta(DType::I8, {1, 16, 8, 8}, 16);
  spec.in[4] = &rm;
  expect_refused("int8 residual without r_scale", {"r_scale"});
  spec.attrs.set("r_scale", 0.02f);
  EXPECT_NO_THROW(cuda::create_layer(spec));
  rm.dtype = DType::F16;
  expect_refused("r_scale with an fp16 residual", {"r_scale"});
  spec.attrs.erase("r_scale");
  EXPECT_NO_THROW(cuda::create_layer(spec));
  spec.in[4] = nullptr;
  sm.dtype = DType::F16;
  EXPECT_THROW(cuda::create_layer(spec), Error);  // scales must be float32
}

}  // namespace
