// kestrel.ConvInt8: the INT8 convolution of a Q/DQ graph, y = act(fmaf(acc, s_x * s_w, B)) + R written
// as fp16 or as the next INT8 layer's int8 codes (the contract in include/kestrel/quant.h). Tactics:
//   direct                 the reference kernel (any group, channel count and strides); the builder
//                          validates the others against it
//   igemm8_BMxBN[_skS]     the tensor-core implicit GEMM (group 1, C % 16 == 0, channels-last input
//                          with 16-byte pixel strides), split-K variants for layers with few tiles
//   stem8                  kestrel.ConvInt8Stem only: X is the float32 image (any layout) and the
//                          kernel quantizes it with the attribute x_scale as it reads it
// Inputs: X (int8, channels-last; or fp16 with the attribute x_scale, quantized by the kernel as it
// reads it, so an activation that fp16 layers also read needs no QuantizeInt8 pass of its own),
// W (int8 OHWI [K][KH][KW][C/group]), Scale (float32 [K], s_x * s_w rounded to float), B (float32 [K]
// or absent), R (fp16 channels-last or absent). Output Y fp16 or int8 (attr out_scale), channels-last,
// possibly a channel slice of a wider (concat) buffer.
#include <cmath>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/int8_kernels.h"
#include "backend/cuda/layers.h"
#include "ir/op_registry.h"

namespace kestrel::cuda {

namespace {

int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

class ConvInt8Layer : public Layer {
 public:
  explicit ConvInt8Layer(const LayerSpec& s) : Layer(s) {
    tactic_ = "direct";
    KESTREL_CHECK(s.in.size() >= 3 && s.in[0] && s.in[1] && s.in[2] && s.out.size() == 1, "internal: ", s.op, " node '",
                  s.name, "' needs inputs X, W, Scale[, B, R] and one output");
    const TensorMeta& x = *s.in[0];
    const TensorMeta& w = *s.in[1];
    const TensorMeta& sc = *s.in[2];
    const TensorMeta& y = *s.out[0];
    has_bias_ = s.in.size() > 3 && s.in[3];
    has_res_ = s.in.size() > 4 && s.in[4];
    auto where = [&] { return s.op + " node '" + s.name + "': "; };
    KESTREL_CHECK(x.rank() == 4 && y.rank() == 4, where(), "only 2-D convolutions run on the GPU");
    stem_ = s.op == "kestrel.ConvInt8Stem";
    if (stem_) {
      KESTREL_CHECK(x.dtype == DType::F32 && !has_res_, where(), "the INT8 stem reads a float32 input and has no residual");
      x_scale_ = s.attrs.f("x_scale", 0.f);
      KESTREL_CHECK(std::isfinite(x_scale_) && x_scale_ > 0.f, where(), "x_scale must be positive, got ", x_scale_);
      tactic_ = "stem8";
    } else if (x.dtype == DType::F16) {
      KESTREL_CHECK(s.attrs.has("x_scale"), where(), "a float16 input X needs the attribute x_scale");
      x_scale_ = s.attrs.f("x_scale");
      KESTREL_CHECK(std::isfinite(x_scale_) && x_scale_ > 0.f, where(), "x_scale must be positive, got ", x_scale_);
      x_half_ = true;
    } else {
      KESTREL_CHECK(x.dtype == DType::I8, where(), "input X must be int8 (or float16 with x_scale), got ",
                    dtype_name(x.dtype));
      KESTREL_CHECK(!s.attrs.has("x_scale"), where(), "x_scale applies to a float16 input only, X is int8");
    }
    KESTREL_CHECK(w.dtype == DType::I8 && w.rank() == 4, where(), "weights must be 4-D int8 (OHWI), got ",
                  dtype_name(w.dtype), " ", shape_str(w.shape));
    KESTREL_CHECK(y.dtype == DType::F16 || y.dtype == DType::I8, where(), "output must be float16 or int8, got ",
                  dtype_name(y.dtype));
    KESTREL_CHECK(sc.dtype == DType::F32 && sc.numel() == y.shape[1], where(), "Scale must be float32 [", y.shape[1],
                  "], got ", dtype_name(sc.dtype), " ", shape_str(sc.shape));
    KESTREL_CHECK(!has_bias_ || (s.in[3]->dtype == DType::F32 && s.in[3]->numel() == y.shape[1]), where(),
                  "bias must be float32 [", y.shape[1], "]");
    KESTREL_CHECK(!has_res_ || (s.in[4]->dtype == DType::F16 && s.in[4]->shape == y.shape), where(),
                  "residual must be float16 of the output's shape ", shape_str(y.shape));
    if (y.dtype == DType::I8) {
      KESTREL_CHECK(s.attrs.has("out_scale"), where(), "an int8 output needs the attribute out_scale");
      out_scale_ = s.attrs.f("out_scale");
      KESTREL_CHECK(std::isfinite(out_scale_) && out_scale_ > 0.f, where(), "out_scale must be positive, got ", out_scale_);
    }

    p_ = conv_params(s, x, w, y, has_res_ ? s.in[4] : nullptr);
    KESTREL_CHECK(static_cast<int64_t>(p_.KH) * p_.KW * (p_.C / p_.group) < (int64_t{1} << 17), where(),
                  "reduction too long for int32 accumulation");
    // The tensor-core kernel reads x in 16-byte chunks (16 int8 or 8 fp16 channels) and writes
    // channels-last rows.
    int64_t ldx = 0, ldy = 0, ldr = 0;
    igemm_ok_ = !stem_ && x.channels_last_ld(&ldx) && y.channels_last_ld(&ldy) &&
                (!has_res_ || s.in[4]->channels_last_ld(&ldr));
    if (stem_)
      KESTREL_CHECK(conv_stem_int8_supports(p_) && y.channels_last_ld(&ldy) && ldy % 16 == 0, where(),
                    "the INT8 stem needs K of 16, 32 or 64, at most ", kStemInt8MaxTaps,
                    " taps and a channels-last output");
  }

  std::vector<std::string> tactics(Handles&) const override {
    if (stem_) return {"stem8"};
    std::vector<std::string> t = {"direct"};
    if (igemm_ok_)
      for (const std::string& c : igemm_int8_tactics(p_, x_half_)) t.push_back(c);
    return t;
  }

  void set_tactic(const std::string& t, Handles&) override {
    scratch_ = 0;
    if (t == "direct" || t == "stem8") {
      KESTREL_CHECK((t == "stem8") == stem_, "tactic ", t, " does not apply to ", spec_.op, " node '", spec_.name, "'");
      tactic_ = t;
      return;
    }
    if (t.rfind("igemm8_", 0) == 0) {
      KESTREL_CHECK(igemm_ok_ && !igemm_int8_tactics(p_, x_half_).empty(), "tactic ", t, " does not apply to ",
                    spec_.op, " node '", spec_.name, "'");
      prepare_igemm_int8(t, x_half_);
      scratch_ = align_up(igemm_int8_scratch_bytes(t, p_), 256);
      counters_.reserve(igemm_int8_counters(t, p_));
      tactic_ = t;
      return;
    }
    fail("unknown INT8 convolution tactic '", t, "'");
  }

  int64_t scratch_bytes() const override { return scratch_; }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    const auto* w = static_cast<const int8_t*>(io.in[1]);
    Int8Epilogue e;
    e.scale = static_cast<const float*>(io.in[2]);
    e.bias = has_bias_ ? static_cast<const float*>(io.in[3]) : nullptr;
    e.r = has_res_ ? static_cast<const __half*>(io.in[4]) : nullptr;
    e.out_scale = out_scale_;
    if (stem_) {
      KESTREL_CHECK(reinterpret_cast<uintptr_t>(io.out[0]) % 16 == 0, "INT8 stem output is not 16-byte aligned");
      launch_conv_stem_int8(p_, static_cast<const float*>(io.in[0]), x_scale_, w, e, io.out[0], stream);
      return;
    }
    if (x_half_) {
      const auto* xh = static_cast<const __half*>(io.in[0]);
      if (tactic_ == "direct")
        launch_conv_int8_direct(p_, xh, x_scale_, w, e, io.out[0], stream);
      else
        launch_conv_igemm_int8(tactic_, p_, xh, x_scale_, w, e, io.out[0], io.scratch, counters_.get(), stream);
      return;
    }
    const auto* x = static_cast<const int8_t*>(io.in[0]);
    if (tactic_ == "direct")
      launch_conv_int8_direct(p_, x, w, e, io.out[0], stream);
    else
      launch_conv_igemm_int8(tactic_, p_, x, w, e, io.out[0], io.scratch, counters_.get(), stream);
  }

 private:
  ConvParams p_;
  float out_scale_ = 0.f;  // > 0: int8 output
  float x_scale_ = 0.f;    // the stem's input scale, or the fp16 X's
  bool stem_ = false;
  bool x_half_ = false;    // X is fp16, quantized with x_scale_ by the kernel
  bool has_bias_ = false, has_res_ = false, igemm_ok_ = false;
  SplitKCounters counters_;
  int64_t scratch_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_conv_int8(const LayerSpec& s) { return std::make_unique<ConvInt8Layer>(s); }

}  // namespace kestrel::cuda
