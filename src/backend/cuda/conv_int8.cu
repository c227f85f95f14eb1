// kestrel.ConvInt8: the INT8 convolution of a Q/DQ graph, y = act(fmaf(acc, s_x * s_w, B)) + R written
// as fp16 or as the next INT8 layer's int8 codes (the contract in include/kestrel/quant.h). Tactics:
//   direct                 the reference kernel (any group, channel count and strides); the builder
//                          validates the others against it
//   vec4                   four output channels per thread, exact int32 sums (conv_int8_vec4.cu):
//                          depthwise layers and channel counts igemm8 cannot take
//   igemm8_BMxBN[_skS]     the tensor-core implicit GEMM (group 1, C % 16 == 0, channels-last input
//                          with 16-byte pixel strides), split-K variants for layers with few tiles
//   cudnn8_N               the N-th plan of cuDNN's graph API for the convolution with the epilogue
//                          fused as pointwise nodes (run-time compiled; int8 X, group 1, SiLU / ReLU /
//                          no activation); on an H200 up to 2x faster than igemm8 on YOLO's 3x3 layers
//   stem8                  kestrel.ConvInt8Stem only: X is the float32 image (any layout) and the
//                          kernel quantizes it with the attribute x_scale as it reads it
//   stem8_fx               the same without quantizing X (int8 weights on the float image): one step
//                          above INT8, validated with the quantization tolerance, chosen where faster
// Inputs: X (int8 codes, channels-last: a kestrel.QuantizeInt8 layer's output or an INT8 layer's with
// out_scale; the stem's is the float32 image), W (int8 OHWI [K][KH][KW][C/group]), Scale (float32 [K],
// s_x * s_w rounded to float), B (float32 [K] or absent), R (fp16 channels-last, or int8 codes with the
// attribute r_scale, or absent). Output Y fp16 or int8 (attr out_scale), channels-last, possibly a
// channel slice of a wider (concat) buffer.
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "backend/cuda/check.h"
#include "backend/cuda/cudnn_be.h"
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
    } else {
      KESTREL_CHECK(x.dtype == DType::I8, where(), "input X must be int8 (a kestrel.QuantizeInt8 layer quantizes ",
                    "a float input), got ", dtype_name(x.dtype));
      KESTREL_CHECK(!s.attrs.has("x_scale"), where(), "the attribute x_scale applies to kestrel.ConvInt8Stem only");
    }
    KESTREL_CHECK(w.dtype == DType::I8 && w.rank() == 4, where(), "weights must be 4-D int8 (OHWI), got ",
                  dtype_name(w.dtype), " ", shape_str(w.shape));
    KESTREL_CHECK(y.dtype == DType::F16 || y.dtype == DType::I8, where(), "output must be float16 or int8, got ",
                  dtype_name(y.dtype));
    KESTREL_CHECK(sc.dtype == DType::F32 && sc.numel() == y.shape[1], where(), "Scale must be float32 [", y.shape[1],
                  "], got ", dtype_name(sc.dtype), " ", shape_str(sc.shape));
    KESTREL_CHECK(!has_bias_ || (s.in[3]->dtype == DType::F32 && s.in[3]->numel() == y.shape[1]), where(),
                  "bias must be float32 [", y.shape[1], "]");
    KESTREL_CHECK(!has_res_ || ((s.in[4]->dtype == DType::F16 || s.in[4]->dtype == DType::I8) && s.in[4]->shape == y.shape),
                  where(), "residual must be float16 or int8 of the output's shape ", shape_str(y.shape));
    res_int8_ = has_res_ && s.in[4]->dtype == DType::I8;
    if (res_int8_) {
      r_scale_ = s.attrs.f("r_scale", 0.f);
      KESTREL_CHECK(std::isfinite(r_scale_) && r_scale_ > 0.f, where(), "an int8 residual needs a positive r_scale, got ", r_scale_);
    } else {
      KESTREL_CHECK(!s.attrs.has("r_scale"), where(), "r_scale applies to an int8 residual only");
    }
    if (y.dtype == DType::I8) {
      KESTREL_CHECK(s.attrs.has("out_scale"), where(), "an int8 output needs the attribute out_scale");
      out_scale_ = s.attrs.f("out_scale");
      KESTREL_CHECK(std::isfinite(out_scale_) && out_scale_ > 0.f, where(), "out_scale must be positive, got ", out_scale_);
    }

    p_ = conv_params(s, x, w, y, has_res_ ? s.in[4] : nullptr, &symmetric_pads_);
    KESTREL_CHECK(static_cast<int64_t>(p_.KH) * p_.KW * (p_.C / p_.group) < (int64_t{1} << 17), where(),
                  "reduction too long for int32 accumulation");
    // The tensor-core kernel reads x in 16-byte chunks of 16 int8 channels and writes channels-last rows.
    int64_t ldx = 0, ldy = 0, ldr = 0;
    igemm_ok_ = !stem_ && x.channels_last_ld(&ldx) && y.channels_last_ld(&ldy) &&
                (!has_res_ || s.in[4]->channels_last_ld(&ldr));
    vec4_ok_ = igemm_ok_ && conv_int8_vec4_supports(p_, ldx);
    if (stem_)
      KESTREL_CHECK(conv_stem_int8_supports(p_) && y.channels_last_ld(&ldy) && ldy % 16 == 0, where(),
                    "the INT8 stem needs K of 16, 32, 48 or 64, at most ", kStemInt8MaxTaps,
                    " taps and a channels-last output");
  }

  std::vector<std::string> tactics(Handles& h) const override {
    if (stem_) return {"stem8", "stem8_fx"};
    std::vector<std::string> t = {"direct"};
    if (vec4_ok_) t.push_back("vec4");
    if (igemm_ok_)
      for (const std::string& c : igemm_int8_tactics(p_)) t.push_back(c);
    if (cudnn_ok()) {
      try {
        const_cast<ConvInt8Layer*>(this)->make_cudnn(h);
        for (int i = 0; i < cudnn_->plans(); ++i) t.push_back("cudnn8_" + std::to_string(i));
      } catch (const Error&) {
        // No graph-API plans for this problem (or this cuDNN): the other tactics remain.
      }
    }
    return t;
  }

  void set_tactic(const std::string& t, Handles& h) override {
    scratch_ = 0;
    if (t == "vec4") {
      KESTREL_CHECK(vec4_ok_, "tactic ", t, " does not apply to ", spec_.op, " node '", spec_.name, "'");
      tactic_ = t;
      return;
    }
    if (t == "direct" || t == "stem8" || t == "stem8_fx") {
      KESTREL_CHECK((t.rfind("stem8", 0) == 0) == stem_, "tactic ", t, " does not apply to ", spec_.op, " node '", spec_.name, "'");
      tactic_ = t;
      return;
    }
    if (t.rfind("igemm8_", 0) == 0) {
      KESTREL_CHECK(igemm_ok_ && !igemm_int8_tactics(p_).empty(), "tactic ", t, " does not apply to ",
                    spec_.op, " node '", spec_.name, "'");
      prepare_igemm_int8(t);
      scratch_ = align_up(igemm_int8_scratch_bytes(t, p_), 256);
      counters_.reserve(igemm_int8_counters(t, p_));
      tactic_ = t;
      return;
    }
    if (t.rfind("cudnn8_", 0) == 0) {
      const int i = cudnn_plan(t, h);
      cudnn_->build(i, h.cudnn);  // run-time compilation
      if (!scalars_) scalars_ = DeviceScalars({out_scale_ > 0.f ? 1.f / out_scale_ : 0.f, res_int8_ ? 1.f / r_scale_ : 0.f, r_scale_});
      cudnn_plan_ = i;
      scratch_ = align_up(cudnn_->workspace(i), 256);
      tactic_ = t;
      return;
    }
    fail("unknown INT8 convolution tactic '", t, "'");
  }

  int64_t scratch_bytes() const override { return scratch_; }
  bool skips_quantization(const std::string& t) const override { return t == "stem8_fx"; }
  void compile_ahead(const std::string& t, Handles& h) override {
    if (t.rfind("cudnn8_", 0) == 0) cudnn_->compile_into_cache(cudnn_plan(t, h), h.cudnn);
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles& h) override {
    const auto* w = static_cast<const int8_t*>(io.in[1]);
    Int8Epilogue e;
    e.scale = static_cast<const float*>(io.in[2]);
    e.bias = has_bias_ ? static_cast<const float*>(io.in[3]) : nullptr;
    e.r = has_res_ && !res_int8_ ? static_cast<const __half*>(io.in[4]) : nullptr;
    e.rq = res_int8_ ? static_cast<const int8_t*>(io.in[4]) : nullptr;
    e.r_scale = r_scale_;
    e.out_scale = out_scale_;
    if (stem_) {
      KESTREL_CHECK(reinterpret_cast<uintptr_t>(io.out[0]) % 16 == 0, "INT8 stem output is not 16-byte aligned");
      launch_conv_stem_int8(p_, static_cast<const float*>(io.in[0]), x_scale_, w, e, io.out[0], tactic_ == "stem8", stream);
      return;
    }
    const auto* x = static_cast<const int8_t*>(io.in[0]);
    if (tactic_.rfind("cudnn8_", 0) == 0) {
      KCUDNN(cudnnSetStream(h.cudnn, stream));
      CudnnInt8Conv::Scalars sc;
      sc.inv_out_scale = scalars_.get(0);
      sc.inv_r_scale = scalars_.get(1);
      sc.r_scale = scalars_.get(2);
      cudnn_->execute(cudnn_plan_, h.cudnn, x, w, e.scale, e.bias, has_res_ ? io.in[4] : nullptr, sc, io.out[0],
                      scratch_ ? io.scratch : nullptr);
      return;
    }
    if (tactic_ == "direct")
      launch_conv_int8_direct(p_, x, w, e, io.out[0], stream);
    else if (tactic_ == "vec4")
      launch_conv_int8_vec4(p_, x, w, e, io.out[0], stream);
    else
      launch_conv_igemm_int8(tactic_, p_, x, w, e, io.out[0], io.scratch, counters_.get(), stream);
  }

 private:
  // Scalars in device memory, each in its own 16-byte slot (cuDNN's graph reads its scalar scales
  // from tensors, and every buffer it is given must be 16-byte aligned).
  class DeviceScalars {
   public:
    DeviceScalars() = default;
    explicit DeviceScalars(const std::vector<float>& v) {
      std::vector<float> slots(v.size() * kSlot, 0.f);
      for (size_t i = 0; i < v.size(); ++i) slots[i * kSlot] = v[i];
      KCUDA(cudaMalloc(&p_, slots.size() * sizeof(float)));
      KCUDA(cudaMemcpy(p_, slots.data(), slots.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    DeviceScalars(DeviceScalars&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
    DeviceScalars& operator=(DeviceScalars&& o) noexcept {
      std::swap(p_, o.p_);
      return *this;
    }
    ~DeviceScalars() {
      if (p_) cudaFree(p_);
    }
    explicit operator bool() const { return p_ != nullptr; }
    const float* get(size_t i) const { return p_ + i * kSlot; }

   private:
    static constexpr size_t kSlot = 16 / sizeof(float);
    float* p_ = nullptr;
  };

  CudnnInt8Conv::Residual residual_kind() const {
    using R = CudnnInt8Conv::Residual;
    return !has_res_ ? R::None : res_int8_ ? R::Int8 : R::Half;
  }
  bool cudnn_ok() const {
    return igemm_ok_ && symmetric_pads_ &&
           CudnnInt8Conv::supports(p_, residual_kind(), out_scale_ > 0.f);
  }
  // cuDNN's first three heuristic plans are candidates: each compiles at build time (20-400 ms); six
  // made yolov8n at batch 32 0.3% faster (bench/RESULTS.md, v8).
  static constexpr int kCudnnPlans = 3;
  void make_cudnn(Handles& h) {
    if (!cudnn_)
      cudnn_ = std::make_unique<CudnnInt8Conv>(p_, h.cudnn, has_bias_, residual_kind(), out_scale_ > 0.f, kCudnnPlans,
                                               int64_t{1} << 30);
  }
  // The plan index of tactic "cudnn8_N", the graph made; throws where the tactic does not apply.
  int cudnn_plan(const std::string& t, Handles& h) {
    KESTREL_CHECK(cudnn_ok(), "tactic ", t, " does not apply to ", spec_.op, " node '", spec_.name, "'");
    make_cudnn(h);
    const int i = std::stoi(t.substr(7));
    KESTREL_CHECK(i >= 0 && i < cudnn_->plans(), "tactic ", t, ": cuDNN offers ", cudnn_->plans(), " plans here");
    return i;
  }

  ConvParams p_;
  float out_scale_ = 0.f;  // > 0: int8 output
  float x_scale_ = 0.f;    // the stem's input scale
  float r_scale_ = 0.f;    // an int8 residual's scale
  bool res_int8_ = false;
  bool stem_ = false;
  bool has_bias_ = false, has_res_ = false, igemm_ok_ = false, vec4_ok_ = false, symmetric_pads_ = false;
  std::unique_ptr<CudnnInt8Conv> cudnn_;
  int cudnn_plan_ = 0;
  DeviceScalars scalars_;  // 1 / out_scale, 1 / r_scale, r_scale
  SplitKCounters counters_;
  int64_t scratch_ = 0;
};

}  // namespace

std::unique_ptr<Layer> make_conv_int8(const LayerSpec& s) { return std::make_unique<ConvInt8Layer>(s); }

}  // namespace kestrel::cuda
