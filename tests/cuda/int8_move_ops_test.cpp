// The channels-last CUDA layers that move int8 codes without a scale (MaxPool, GlobalMaxPool,
// kestrel.SPPF, Resize nearest): INT8 engines run them on the codes, since max and nearest selection
// commute with quantization when input and output share a scale. Each layer is made from hand-built
// tensor metadata, every tactic it offers runs twice with the output buffer poisoned with a different
// byte each time, and the result must equal, bit for bit, a host reference computed on the codes
// (windows clipped at the borders, SPPF as the three chained pools it is defined as). Inputs and
// outputs are also channel slices of wider buffers: the input's foreign channels hold 127, which
// would win a max if read, and the output's foreign bytes must keep the poison.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/layer.h"
#include "gpu_test_util.h"
#include "layer_meta.h"

namespace {

using namespace kestrel;
using cuda::TensorMeta;
using test::channels_last_meta;
using test::DevBuf;


enum class Op { MaxPool, GlobalMaxPool, Sppf, Resize };

struct MoveCase {
  const char* name;
  Op op;
  int64_t n, c, h, w;
  int64_t k, s, p;     // MaxPool window (SPPF: k is the pool size)
  int64_t x_ld, x_off;  // input: pixel stride (0: C), first channel inside the wider buffer
  int64_t y_ld, y_off;  // output likewise (0: the output's channel count)
  std::vector<std::string> tactics;  // what the layer must offer
};

// "vec" and "smem" need C, x_ld and y_ld on the 16-channel grid (16 bytes of int8) and, for smem,
// 3 H W 16 bytes of shared memory (at most 48 KiB). The offsets keep the pointers 16-byte aligned
// where the vector kernels apply; Resize picks its vector path at enqueue (one tactic).
const std::vector<MoveCase>& move_cases() {
  static const std::vector<MoveCase> c = {
      {"sppf_n2_c32", Op::Sppf, 2, 32, 20, 20, 5, 1, 2, 0, 0, 0, 0, {"default", "vec", "smem"}},
      {"sppf_c128", Op::Sppf, 1, 128, 20, 20, 5, 1, 2, 0, 0, 0, 0, {"default", "vec", "smem"}},
      {"sppf_out_slice", Op::Sppf, 2, 32, 20, 20, 5, 1, 2, 0, 0, 160, 16, {"default", "vec", "smem"}},
      {"sppf_in_slice", Op::Sppf, 1, 32, 13, 11, 5, 1, 2, 64, 16, 0, 0, {"default", "vec", "smem"}},
      {"sppf_k3_plane_40x40", Op::Sppf, 1, 16, 40, 40, 3, 1, 1, 0, 0, 0, 0, {"default", "vec"}},
      {"sppf_c24_off_grid", Op::Sppf, 1, 24, 9, 7, 5, 1, 2, 0, 0, 0, 0, {"default"}},
      {"sppf_ldy_off_grid", Op::Sppf, 1, 16, 10, 10, 5, 1, 2, 0, 0, 72, 8, {"default"}},
      {"sppf_odd_slices", Op::Sppf, 2, 24, 9, 7, 5, 1, 2, 27, 3, 101, 5, {"default"}},
      {"maxpool_k5s1p2_n2_c32", Op::MaxPool, 2, 32, 20, 20, 5, 1, 2, 0, 0, 0, 0, {"default"}},
      {"maxpool_k5s1p2_slices", Op::MaxPool, 1, 24, 11, 13, 5, 1, 2, 40, 8, 56, 24, {"default"}},
      {"maxpool_k3s2p1", Op::MaxPool, 2, 16, 15, 14, 3, 2, 1, 0, 0, 0, 0, {"default"}},
      {"globalmaxpool_slices", Op::GlobalMaxPool, 2, 32, 7, 5, 0, 1, 0, 48, 16, 40, 4, {"default"}},
      {"resize2x_n2_c32", Op::Resize, 2, 32, 20, 20, 0, 1, 0, 0, 0, 0, 0, {"default"}},
      {"resize2x_out_slice_vec", Op::Resize, 1, 32, 10, 10, 0, 1, 0, 0, 0, 64, 32, {"default"}},
      {"resize2x_in_slice_vec", Op::Resize, 1, 16, 10, 10, 0, 1, 0, 48, 32, 0, 0, {"default"}},
      {"resize2x_odd_slices", Op::Resize, 1, 24, 7, 9, 0, 1, 0, 30, 6, 40, 3, {"default"}},
  };
  return c;
}

// The output shape [N, OC, OH, OW] of a case.
Shape out_shape(const MoveCase& mc) {
  switch (mc.op) {
    case Op::MaxPool:
      return {mc.n, mc.c, (mc.h + 2 * mc.p - mc.k) / mc.s + 1, (mc.w + 2 * mc.p - mc.k) / mc.s + 1};
    case Op::GlobalMaxPool: return {mc.n, mc.c, 1, 1};
    case Op::Sppf: return {mc.n, 4 * mc.c, mc.h, mc.w};
    case Op::Resize: return {mc.n, mc.c, 2 * mc.h, 2 * mc.w};
  }
  return {};
}

cuda::LayerSpec make_spec(const MoveCase& mc, const TensorMeta& xm, const TensorMeta& ym) {
  using I = std::vector<int64_t>;
  cuda::LayerSpec spec;
  spec.name = mc.name;
  switch (mc.op) {
    case Op::MaxPool:
      spec.op = "MaxPool";
      spec.attrs.set("kernel_shape", I{mc.k, mc.k});
      spec.attrs.set("strides", I{mc.s, mc.s});
      spec.attrs.set("pads", I{mc.p, mc.p, mc.p, mc.p});
      break;
    case Op::GlobalMaxPool: spec.op = "GlobalMaxPool"; break;
    case Op::Sppf:
      spec.op = "kestrel.SPPF";
      spec.attrs.set("kernel", mc.k);
      break;
    case Op::Resize:  // as Ultralytics exports nn.Upsample(scale_factor=2)
      spec.op = "Resize";
      spec.attrs.set("mode", std::string("nearest"));
      spec.attrs.set("coordinate_transformation_mode", std::string("asymmetric"));
      spec.attrs.set("nearest_mode", std::string("floor"));
      spec.attrs.set("kestrel_scales", std::vector<float>{1.f, 1.f, 2.f, 2.f});
      break;
  }
  spec.precision = Precision::INT8;
  spec.in = {&xm};
  spec.out = {&ym};
  return spec;
}

// Max pooling of int8 NCHW planes with windows clipped to the input (MaxPool's -inf padding).
std::vector<int8_t> max_pool_ref(const std::vector<int8_t>& x, int64_t planes, int64_t H, int64_t W, int64_t k, int64_t s,
                                 int64_t p, int64_t OH, int64_t OW) {
  std::vector<int8_t> y(static_cast<size_t>(planes * OH * OW));
  for (int64_t q = 0; q < planes; ++q)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        int m = -129;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t iy = oy * s - p + i, ix = ox * s - p + j;
            if (iy >= 0 && iy < H && ix >= 0 && ix < W) m = std::max(m, int(x[(q * H + iy) * W + ix]));
          }
        EXPECT_GE(m, -128) << "empty window";
        y[(q * OH + oy) * OW + ox] = static_cast<int8_t>(m);
      }
  return y;
}

// The expected output, NCHW, from the NCHW input codes.
std::vector<int8_t> reference(const MoveCase& mc, const std::vector<int8_t>& x) {
  const int64_t N = mc.n, C = mc.c, H = mc.h, W = mc.w;
  const Shape ys = out_shape(mc);
  switch (mc.op) {
    case Op::MaxPool: return max_pool_ref(x, N * C, H, W, mc.k, mc.s, mc.p, ys[2], ys[3]);
    case Op::GlobalMaxPool: return max_pool_ref(x, N * C, H, W, std::max(H, W), 1, 0, 1, 1);
    case Op::Sppf: {
      // Concat([X, m(X), m(m(X)), m(m(m(X)))], channels), m = MaxPool(k, stride 1, pad k / 2).
      std::vector<std::vector<int8_t>> level = {x};
      for (int l = 1; l <= 3; ++l) level.push_back(max_pool_ref(level.back(), N * C, H, W, mc.k, 1, mc.k / 2, H, W));
      std::vector<int8_t> y(static_cast<size_t>(N * 4 * C * H * W));
      for (int64_t n = 0; n < N; ++n)
        for (int l = 0; l < 4; ++l)
          std::copy_n(level[l].begin() + n * C * H * W, C * H * W, y.begin() + (n * 4 + l) * C * H * W);
      return y;
    }
    case Op::Resize: {
      // asymmetric + floor at scale 2: source index o / 2.
      std::vector<int8_t> y(static_cast<size_t>(N * C * ys[2] * ys[3]));
      for (int64_t q = 0; q < N * C; ++q)
        for (int64_t oy = 0; oy < ys[2]; ++oy)
          for (int64_t ox = 0; ox < ys[3]; ++ox) y[(q * ys[2] + oy) * ys[3] + ox] = x[(q * H + oy / 2) * W + ox / 2];
      return y;
    }
  }
  return {};
}

class Int8MoveOps : public ::testing::TestWithParam<size_t> {};
class Int8MoveOpsHost : public Int8MoveOps {};

// Metadata only (no GPU; label cpu: test_cuda_host): the tactics offered follow the 16-channel grid.
TEST_P(Int8MoveOpsHost, OffersTactics) {
  const MoveCase& mc = move_cases()[GetParam()];
  const Shape ys = out_shape(mc);
  TensorMeta xm = channels_last_meta(DType::I8, {mc.n, mc.c, mc.h, mc.w}, mc.x_ld ? mc.x_ld : mc.c);
  TensorMeta ym = channels_last_meta(DType::I8, ys, mc.y_ld ? mc.y_ld : ys[1]);
  std::unique_ptr<cuda::Layer> layer = cuda::create_layer(make_spec(mc, xm, ym));
  cuda::Handles handles;
  EXPECT_EQ(layer->tactics(handles), mc.tactics);
}

TEST_P(Int8MoveOps, BitExact) {
  KESTREL_REQUIRE_GPU();
  const MoveCase& mc = move_cases()[GetParam()];
  const int64_t N = mc.n, C = mc.c, H = mc.h, W = mc.w;
  const Shape ys = out_shape(mc);
  const int64_t OC = ys[1], OH = ys[2], OW = ys[3];
  const int64_t ldx = mc.x_ld ? mc.x_ld : C, ldy = mc.y_ld ? mc.y_ld : OC;
  ASSERT_LE(mc.x_off + C, ldx);
  ASSERT_LE(mc.y_off + OC, ldy);
  TensorMeta xm = channels_last_meta(DType::I8, {N, C, H, W}, ldx);
  TensorMeta ym = channels_last_meta(DType::I8, ys, ldy);
  std::unique_ptr<cuda::Layer> layer = cuda::create_layer(make_spec(mc, xm, ym));

  // Codes over the full range, NCHW for the reference; on the device whole pixels of the wider buffer
  // whose foreign channels hold 127.
  std::mt19937 rng(77 + static_cast<uint32_t>(GetParam()));
  std::uniform_int_distribution<int> code(-128, 127);
  std::vector<int8_t> xq(static_cast<size_t>(N * C * H * W));
  for (auto& v : xq) v = static_cast<int8_t>(code(rng));
  std::vector<int8_t> x_host(static_cast<size_t>(N * H * W * ldx), 127);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) x_host[(n * H * W + y * W + x) * ldx + mc.x_off + c] = xq[((n * C + c) * H + y) * W + x];
  const std::vector<int8_t> want = reference(mc, xq);

  DevBuf x(x_host.size()), y(static_cast<size_t>(N * OH * OW * ldy));
  ASSERT_EQ(cudaMemcpy(x.p, x_host.data(), x_host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  auto y_index = [&](int64_t n, int64_t k, int64_t oy, int64_t ox) { return ((n * OH + oy) * OW + ox) * ldy + mc.y_off + k; };
  std::vector<bool> in_view(y.bytes, false);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < OC; ++k)
      for (int64_t oy = 0; oy < OH; ++oy)
        for (int64_t ox = 0; ox < OW; ++ox) in_view[y_index(n, k, oy, ox)] = true;

  cuda::Handles handles;
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  const std::vector<std::string> tactics = layer->tactics(handles);
  EXPECT_EQ(tactics, mc.tactics);
  for (const std::string& t : tactics) {
    SCOPED_TRACE("tactic " + t);
    layer->set_tactic(t, handles);
    cuda::LayerIO io;
    io.in = {static_cast<const int8_t*>(x.p) + mc.x_off};
    io.out = {static_cast<int8_t*>(y.p) + mc.y_off};
    // Two runs, two poisons: an element never written differs between them.
    std::vector<uint8_t> got[2];
    const uint8_t poison[2] = {0x80, 0x7F};  // -128 and 127
    for (int run = 0; run < 2; ++run) {
      ASSERT_EQ(cudaMemset(y.p, poison[run], y.bytes), cudaSuccess);
      layer->enqueue(io, stream, handles);
      ASSERT_EQ(cudaGetLastError(), cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
      got[run].resize(y.bytes);
      ASSERT_EQ(cudaMemcpy(got[run].data(), y.p, y.bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    }
    int64_t differ = 0, clobbered = 0, wrong = 0;
    for (size_t i = 0; i < y.bytes; ++i) {
      if (in_view[i]) differ += got[0][i] != got[1][i];
      else clobbered += got[0][i] != poison[0] || got[1][i] != poison[1];
    }
    EXPECT_EQ(differ, 0) << "output bytes unwritten or not deterministic";
    EXPECT_EQ(clobbered, 0) << "bytes outside the output view were written";
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < OC; ++k)
        for (int64_t oy = 0; oy < OH; ++oy)
          for (int64_t ox = 0; ox < OW; ++ox) {
            const int8_t w = want[((n * OC + k) * OH + oy) * OW + ox];
            const int8_t h = static_cast<int8_t>(got[0][y_index(n, k, oy, ox)]);
            if (h != w && wrong++ < 5)
              ADD_FAILURE() << "(" << n << "," << k << "," << oy << "," << ox << "): " << int(h) << " vs " << int(w);
          }
    EXPECT_EQ(wrong, 0);
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

INSTANTIATE_TEST_SUITE_P(Int8, Int8MoveOps, ::testing::Range<size_t>(0, move_cases().size()),
                         [](const auto& info) { return std::string(move_cases()[info.param].name); });
INSTANTIATE_TEST_SUITE_P(Int8, Int8MoveOpsHost, ::testing::Range<size_t>(0, move_cases().size()),
                         [](const auto& info) { return std::string(move_cases()[info.param].name); });

// Averages and interpolation of int8 codes are not codes of one scale: refused at layer creation,
// naming the node (metadata only, no GPU).
TEST(Int8MoveOpsErrorsHost, RefusesAveragingOps) {
  TensorMeta xm = channels_last_meta(DType::I8, {1, 16, 8, 8}, 16);
  TensorMeta pm = channels_last_meta(DType::I8, {1, 16, 8, 8}, 16);
  TensorMeta gm = channels_last_meta(DType::I8, {1, 16, 1, 1}, 16);
  TensorMeta rm = channels_last_meta(DType::I8, {1, 16, 16, 16}, 16);
  auto expect_refused = [](const cuda::LayerSpec& spec, const char* word) {
    try {
      cuda::create_layer(spec);
      ADD_FAILURE() << spec.op << " on int8 was accepted";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("node '" + spec.name + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("int8"), std::string::npos) << what;
      EXPECT_NE(what.find(word), std::string::npos) << what;
    }
  };
  cuda::LayerSpec spec;
  spec.in = {&xm};
  spec.name = "avg";
  spec.op = "AveragePool";
  spec.attrs.set("kernel_shape", std::vector<int64_t>{3, 3});
  spec.attrs.set("pads", std::vector<int64_t>{1, 1, 1, 1});
  spec.out = {&pm};
  expect_refused(spec, "max pooling");
  spec.op = "MaxPool";
  EXPECT_NO_THROW(cuda::create_layer(spec));

  spec = {};
  spec.in = {&xm};
  spec.out = {&gm};
  spec.name = "gap";
  spec.op = "GlobalAveragePool";
  expect_refused(spec, "max pooling");
  spec.op = "GlobalMaxPool";
  EXPECT_NO_THROW(cuda::create_layer(spec));

  spec = {};
  spec.in = {&xm};
  spec.out = {&rm};
  spec.name = "up";
  spec.op = "Resize";
  spec.attrs.set("mode", std::string("linear"));
  expect_refused(spec, "nearest");
  spec.attrs.set("mode", std::string("nearest"));
  EXPECT_NO_THROW(cuda::create_layer(spec));
}

}  // namespace
