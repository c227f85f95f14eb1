// kestrel.ConvInt8Stem: the first convolution in INT8, quantizing the float32 image (NCHW) as it reads
// it, against the contract computed on the CPU (quantize, exact int32 sum, FP32 epilogue, fp16 or int8
// output). SiLU runs on tanh.approx in the kernel, as in the tensor-core convolutions
// (int8_ops_test.cpp): fp16 outputs all within 2 ulp plus that approximation's error and >= 99.9%
// within one ulp (about 1% move by one); int8 codes within one, < 0.5% differ. Tactic stem8_fx (the
// image not quantized: int8 weights on float input) is held to the same bounds against that
// computation (FP32 sums of x * q_w, times s_w).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "backend/cuda/layer.h"
#include "gpu_test_util.h"
#include "layer_meta.h"
#include "quant/int8_conv.h"

namespace {

using namespace kestrel;
using cuda::TensorMeta;

int8_t code(float v, float s) { return static_cast<int8_t>(std::clamp(std::nearbyint(v / s), -128.f, 127.f)); }

struct StemCase {
  int64_t k;
  bool out_int8;
  int64_t r = 3, stride = 2, pad = 1;  // YOLOv8 / YOLO11: 3x3 s2 p1; YOLOv5: 6x6 s2 p2
  // A width that is a multiple of 4 takes the kernels' unrolled 3x3 stride-2 path; 38 the generic loop.
  int64_t width = 38;
};

class Int8Stem : public ::testing::TestWithParam<StemCase> {};

TEST_P(Int8Stem, MatchesContract) {
  const auto [K, out_int8, R, S, P, W] = GetParam();
  const int64_t N = 2, C = 3, H = 37;
  const int64_t OH = (H + 2 * P - R) / S + 1, OW = (W + 2 * P - R) / S + 1;
  const TensorMeta xm = test::dense_meta(DType::F32, {N, C, H, W}), wm = test::dense_meta(DType::I8, {K, R, R, C}),
                   sm = test::dense_meta(DType::F32, {K}), bm = sm,
                   ym = test::channels_last_meta(out_int8 ? DType::I8 : DType::F16, {N, K, OH, OW}, K);
  const float s_x = 1.f / 127.f, out_scale = 3.f / 127.f;
  cuda::LayerSpec spec;
  spec.name = "stem";
  spec.op = "kestrel.ConvInt8Stem";
  using I = std::vector<int64_t>;
  spec.attrs.set("kernel_shape", I{R, R});
  spec.attrs.set("strides", I{S, S});
  spec.attrs.set("pads", I{P, P, P, P});
  spec.attrs.set("activation", std::string("silu"));
  spec.attrs.set("x_scale", s_x);
  if (out_int8) spec.attrs.set("out_scale", out_scale);
  spec.in = {&xm, &wm, &sm, &bm, nullptr};
  spec.out = {&ym};
  auto layer = cuda::create_layer(spec);
  cuda::Handles handles;
  ASSERT_EQ(layer->tactics(handles), (std::vector<std::string>{"stem8", "stem8_fx"}));
  EXPECT_FALSE(layer->skips_quantization("stem8"));
  EXPECT_TRUE(layer->skips_quantization("stem8_fx"));
  KESTREL_REQUIRE_GPU();

  std::mt19937 rng(7);
  std::uniform_real_distribution<float> pix(-0.1f, 1.1f), unit(0.5f, 1.5f), sym(-1.f, 1.f);
  std::uniform_int_distribution<int> wcode(-127, 127);
  std::vector<float> x(static_cast<size_t>(N * C * H * W));
  for (auto& v : x) v = pix(rng);  // beyond [0, 1] too: saturating codes
  std::vector<int8_t> xq(x.size());
  for (size_t i = 0; i < x.size(); ++i) xq[i] = code(x[i], s_x);
  std::vector<int8_t> w_ohwi(static_cast<size_t>(K * R * R * C));
  std::vector<float> w_ref(w_ohwi.size());
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t i = 0; i < R * R; ++i) {
        const int8_t v = static_cast<int8_t>(wcode(rng));
        w_ohwi[(k * R * R + i) * C + c] = v;
        w_ref[(k * C + c) * R * R + i] = v;
      }
  std::vector<float> s_w(static_cast<size_t>(K)), scale(s_w.size()), bias(s_w.size());
  for (int64_t k = 0; k < K; ++k) {
    s_w[k] = 2.f / (s_x * 127.f * 60.f * static_cast<float>(R + 1)) * unit(rng);
    scale[k] = s_x * s_w[k];
    bias[k] = sym(rng);
  }
  const quant::detail::ConvGeometry g{N, C, H, W, K, OH, OW, R, R, S, S, 1, 1, P, P, 1};
  std::vector<int32_t> acc(static_cast<size_t>(N * K * OH * OW));
  quant::detail::int8_conv_accumulate(xq.data(), w_ref.data(), g, acc.data());
  quant::detail::Epilogue epi;
  epi.act = quant::detail::Act::Silu;
  std::vector<float> y_ref(acc.size()), y_pre(acc.size());
  quant::detail::int8_conv_epilogue(acc.data(), s_x, s_w.data(), bias.data(), epi, {}, g, y_ref.data());
  quant::detail::int8_conv_epilogue(acc.data(), s_x, s_w.data(), bias.data(), {}, {}, g, y_pre.data());
  // stem8_fx: the float image times the weight codes, then s_w (no activation quantization).
  std::vector<float> fx_ref(acc.size()), fx_pre(acc.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) {
          double sum = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t ky = 0; ky < R; ++ky)
              for (int64_t kx = 0; kx < R; ++kx) {
                const int64_t iy = oy * S - P + ky, ix = ox * S - P + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                sum += static_cast<double>(x[((n * C + c) * H + iy) * W + ix]) * w_ref[(k * C + c) * R * R + ky * R + kx];
              }
          const size_t ri = static_cast<size_t>(((n * K + k) * OH + oy) * OW + ox);
          const float v = static_cast<float>(sum) * s_w[k] + bias[k];
          fx_pre[ri] = v;
          fx_ref[ri] = v / (1.f + std::exp(-v));
        }

  void *dx, *dw, *ds, *db, *dy;
  const size_t esize = out_int8 ? 1 : 2, ybytes = acc.size() * esize;
  ASSERT_EQ(cudaMalloc(&dx, x.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dw, w_ohwi.size()), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&ds, scale.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&db, bias.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, ybytes), cudaSuccess);
  cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(dw, w_ohwi.data(), w_ohwi.size(), cudaMemcpyHostToDevice);
  cudaMemcpy(ds, scale.data(), scale.size() * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(db, bias.data(), bias.size() * 4, cudaMemcpyHostToDevice);
  for (const std::string tactic : {"stem8", "stem8_fx"}) {
    const std::vector<float>& ref = tactic == "stem8" ? y_ref : fx_ref;
    const std::vector<float>& pre = tactic == "stem8" ? y_pre : fx_pre;
    layer->set_tactic(tactic, handles);
    cuda::LayerIO io;
    io.in = {dx, dw, ds, db, nullptr};
    io.out = {dy};
    // Every byte is a legal int8 code (and 0xA5A5 / 0x5A5A legal fp16 values), so no single poison can
    // show an element never written: two runs over two different poisons must give the same bytes.
    std::vector<uint8_t> got(ybytes), again(ybytes);
    for (const int poison : {0xA5, 0x5A}) {
      ASSERT_EQ(cudaMemset(dy, poison, ybytes), cudaSuccess);
      layer->enqueue(io, nullptr, handles);
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(poison == 0xA5 ? got.data() : again.data(), dy, ybytes, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    int64_t unwritten = 0;
    for (size_t i = 0; i < ybytes; ++i) unwritten += got[i] != again[i];
    EXPECT_EQ(unwritten, 0) << tactic << ": output bytes that follow the poison (never written)";

    int64_t inexact = 0, beyond_1ulp = 0, bad = 0;
    const int64_t total = static_cast<int64_t>(acc.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t p = 0; p < OH * OW; ++p) {
          const size_t ri = static_cast<size_t>((n * K + k) * OH * OW + p);
          const size_t yi = static_cast<size_t>((n * OH * OW + p) * K + k);  // NHWC
          const uint16_t want_h = f32_to_f16(ref[ri]);
          if (out_int8) {
            const int d = std::abs(int(static_cast<int8_t>(got[yi])) - int(code(f16_to_f32(want_h), out_scale)));
            inexact += d != 0;
            bad += d > 1;
          } else {
            uint16_t have_h;
            std::memcpy(&have_h, &got[yi * 2], 2);
            const float have = f16_to_f32(have_h), want = f16_to_f32(want_h);
            const float ulp = std::fabs(f16_to_f32(static_cast<uint16_t>(want_h + 1)) - want);
            const float act_tol = 3e-4f * std::fabs(pre[ri]);  // tanh.approx SiLU
            const float err = std::fabs(have - want);
            inexact += have_h != want_h;
            beyond_1ulp += err > ulp && err > act_tol;
            bad += !(err <= 2 * ulp + act_tol);
          }
        }
    std::printf("[int8] stem K=%lld %s %s: %.3f%% inexact\n", static_cast<long long>(K), tactic.c_str(),
                out_int8 ? "int8" : "fp16", 100.0 * inexact / total);
    EXPECT_EQ(bad, 0) << tactic;
    if (out_int8)
      EXPECT_LT(inexact, 0.005 * total) << tactic;
    else
      EXPECT_LE(beyond_1ulp, total / 1000) << tactic;
  }
  for (void* p : {dx, dw, ds, db, dy}) cudaFree(p);
}

INSTANTIATE_TEST_SUITE_P(Int8, Int8Stem,
                         ::testing::Values(StemCase{16, false}, StemCase{16, true}, StemCase{32, false}, StemCase{64, true},
                                           StemCase{16, false, 6, 2, 2}, StemCase{16, true, 6, 2, 2},
                                           StemCase{16, false, 3, 2, 1, 40}, StemCase{16, true, 3, 2, 1, 40},
                                           StemCase{48, false, 3, 2, 1, 40}, StemCase{64, true, 3, 2, 1, 44}),
                         [](const auto& info) {
                           std::string name = "k";
                           name += std::to_string(info.param.k);
                           name += "_r";
                           name += std::to_string(info.param.r);
                           name += "_w";
                           name += std::to_string(info.param.width);
                           name += info.param.out_int8 ? "_int8" : "_fp16";
                           return name;
                         });

}  // namespace
