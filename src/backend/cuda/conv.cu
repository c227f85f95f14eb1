// Conv, kestrel.Conv (act(conv(X, W) + B) + R) and kestrel.ConvStem (a first convolution with few
// input channels reading the float32 input in any layout) with several tactics the builder times:
//   direct          the reference kernel (any strides / groups), what the others are checked against
//   stem            own kernel for kestrel.ConvStem: all K outputs of a pixel per thread
//   stem_mma        kestrel.ConvStem on the tensor cores (FP16 output, YOLOv8 / YOLO11's 3x3 stride 2)
//   depthwise       own channels-last kernel for group == C == K
//   igemm_BMxBN[_skS]  own tensor-core implicit GEMM, FP16, epilogue fused, strided output, split-K
//   cudnn_algoN     cuDNN's forward algorithm N (NHWC), into scratch, then our epilogue kernel (or
//                   straight into Y when there is nothing to add and Y is dense)
//   cudnnbeN        FP16: the N-th execution plan of cuDNN's graph API heuristics (engines the legacy
//                   algorithms do not reach), the same scratch and epilogue
// Weights arrive OHWI in the engine's precision (the builder converts them), bias in float32.
#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "backend/cuda/check.h"
#include "backend/cuda/conv_kernels.h"
#include "backend/cuda/cudnn_be.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"
#include "ir/op_registry.h"

namespace kestrel::cuda {

int activation_code(const std::string& act) {
  if (act.empty() || act == "none") return kActNone;
  if (act == "relu") return kActRelu;
  if (act == "leaky_relu") return kActLeaky;
  if (act == "sigmoid") return kActSigmoid;
  if (act == "silu") return kActSilu;
  if (act == "hard_swish") return kActHardSwish;
  if (act == "hard_sigmoid") return kActHardSigmoid;
  if (act == "tanh") return kActTanh;
  fail("unknown fused activation '", act, "'");
}

ConvParams conv_params(const LayerSpec& s, const TensorMeta& x, const TensorMeta& w, const TensorMeta& y,
                       const TensorMeta* r, bool* symmetric_pads) {
  KESTREL_CHECK(x.rank() == 4 && y.rank() == 4, s.op, " node '", s.name, "': only 2-D convolutions run on the GPU");
  KESTREL_CHECK(w.rank() == 4, "internal: ", s.op, " node '", s.name, "': weights must be OHWI");
  Node n{s.name, s.op, {}, {}, s.attrs};
  const std::vector<int64_t> kernel = {w.shape[1], w.shape[2]};
  const PoolGeometry g = window_geometry(n, {x.shape[2], x.shape[3]}, kernel, false);
  ConvParams p{};
  p.N = static_cast<int>(x.shape[0]);
  p.C = static_cast<int>(x.shape[1]);
  p.H = static_cast<int>(x.shape[2]);
  p.W = static_cast<int>(x.shape[3]);
  p.K = static_cast<int>(y.shape[1]);
  p.OH = static_cast<int>(y.shape[2]);
  p.OW = static_cast<int>(y.shape[3]);
  p.KH = static_cast<int>(kernel[0]);
  p.KW = static_cast<int>(kernel[1]);
  p.sh = static_cast<int>(g.strides[0]);
  p.sw = static_cast<int>(g.strides[1]);
  p.ph = static_cast<int>(g.pads[0]);
  p.pw = static_cast<int>(g.pads[1]);
  p.dh = static_cast<int>(g.dilations[0]);
  p.dw = static_cast<int>(g.dilations[1]);
  p.group = static_cast<int>(s.attrs.i("group", 1));
  if (symmetric_pads) *symmetric_pads = g.pads[0] == g.pads[2] && g.pads[1] == g.pads[3];
  KESTREL_CHECK(p.group > 0 && p.C % p.group == 0 && p.K % p.group == 0 && w.shape[0] == p.K &&
                    w.shape[3] * p.group == p.C,
                s.op, " node '", s.name, "': weights ", shape_str(w.shape), " (OHWI) do not match input ",
                shape_str(x.shape), ", output ", shape_str(y.shape), " and group ", p.group);
  KESTREL_CHECK(y.shape[0] == p.N && g.out_spatial.size() == 2 && g.out_spatial[0] == p.OH && g.out_spatial[1] == p.OW,
                s.op, " node '", s.name, "': output shape ", shape_str(y.shape), " does not match the window geometry");
  for (int d = 0; d < 4; ++d) {
    p.xs[d] = x.strides[d];
    p.ys[d] = y.strides[d];
    p.rs[d] = r ? r->strides[d] : 0;
  }
  p.act = activation_code(s.attrs.s("activation", "none"));
  p.alpha = s.attrs.f("alpha", p.act == kActHardSigmoid ? 0.2f : 0.01f);  // ONNX defaults, as the CPU
  p.beta = s.attrs.f("beta", 0.5f);
  return p;
}

SplitKCounters::~SplitKCounters() {
  if (p_) cudaFree(p_);
}

void SplitKCounters::reserve(int64_t n) {
  if (n <= n_) return;
  if (p_) KCUDA(cudaFree(p_));
  p_ = nullptr;
  n_ = 0;
  KCUDA(cudaMalloc(&p_, static_cast<size_t>(n) * sizeof(int)));
  KCUDA(cudaMemset(p_, 0, static_cast<size_t>(n) * sizeof(int)));
  n_ = n;
}

namespace {

int64_t align_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

class ConvLayer : public Layer {
 public:
  explicit ConvLayer(const LayerSpec& s) : Layer(s) {
    tactic_ = "direct";
    const TensorMeta& x = *s.in.at(0);
    const TensorMeta& w = *s.in.at(1);
    const TensorMeta& y = *s.out.at(0);
    KESTREL_CHECK(x.rank() == 4, s.op, " node '", s.name, "': only 2-D convolutions run on the GPU");
    KESTREL_CHECK(w.rank() == 4, "internal: ", s.op, " weights must be OHWI");
    has_bias_ = s.in.size() > 2 && s.in[2];
    has_res_ = s.in.size() > 3 && s.in[3];
    half_ = y.dtype == DType::F16;
    // Same dtype everywhere, or (kestrel.ConvStem) float32 input and weights with an FP16 output.
    mixed_ = x.dtype == DType::F32 && w.dtype == DType::F32 && half_;
    KESTREL_CHECK((x.dtype == y.dtype && w.dtype == x.dtype && (x.dtype == DType::F32 || half_)) || mixed_,
                  "internal: ", s.op, " node '", s.name, "' dtypes ", dtype_name(x.dtype), "/", dtype_name(w.dtype), "/",
                  dtype_name(y.dtype));
    KESTREL_CHECK(!has_bias_ || s.in[2]->dtype == DType::F32, "internal: conv bias must be float32");
    p_ = conv_params(s, x, w, y, has_res_ ? s.in[3] : nullptr, &symmetric_pads_);
    y_dense_nhwc_ = y.channels_last && y.strides == channels_last_strides(y.shape);
    k_fastest_ = y.strides[1] == 1;
    // The 16-byte epilogue after cuDNN: FP16, channels-last output (and residual), strides of 8.
    vec_epi_ = half_ && !mixed_ && p_.K % 8 == 0 && y.channels_last_ld(&ldy_) && ldy_ % 8 == 0 &&
               (!has_res_ || (s.in[3]->channels_last_ld(&ldr_) && ldr_ % 8 == 0));
  }

  ~ConvLayer() override { destroy_cudnn(); }

  std::vector<std::string> tactics(Handles& h) const override {
    std::vector<std::string> t = {"direct"};
    const TensorMeta& x = *spec_.in[0];
    const TensorMeta& y = *spec_.out[0];
    int64_t ldx = 0, ldy = 0, ldr = 0;
    const bool cl = x.channels_last_ld(&ldx) && y.channels_last_ld(&ldy) && (!has_res_ || spec_.in[3]->channels_last_ld(&ldr));
    const TensorMeta& w = *spec_.in[1];
    int64_t ldy_only = 0;
    if (x.dtype == DType::F32 && w.dtype == DType::F32 && !has_res_ && y.channels_last_ld(&ldy_only) && ldy_only % 8 == 0 &&
        conv_stem_supports(p_))
      t.push_back("stem");
    if (mixed_ && !has_res_ && conv_stem_mma_supports(p_)) t.push_back("stem_mma");
    if (mixed_) return t;  // the other kernels (and cuDNN) read and write one dtype
    if (cl && p_.group == p_.C && p_.K == p_.C) t.push_back("depthwise");
    if (cl && half_ && p_.group == 1 && p_.C % 8 == 0 && ldx % 8 == 0 && p_.K % 2 == 0 && ldy % 2 == 0 &&
        (!has_res_ || ldr % 2 == 0))
      for (const std::string& c : igemm_tactics(p_)) t.push_back(c);
    if (symmetric_pads_) {
      // cuDNN's own heuristic list (every algorithm with its support status for this problem).
      const_cast<ConvLayer*>(this)->make_descriptors();
      int returned = 0;
      cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      if (cudnnGetConvolutionForwardAlgorithm_v7(h.cudnn, xd_, wd_, cd_, yd_, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                 perf) == CUDNN_STATUS_SUCCESS) {
        for (int i = 0; i < returned; ++i) {
          if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
          // True FP32 excludes the transform algorithms (FFT, Winograd): their rounding is not FP32's.
          const cudnnConvolutionFwdAlgo_t a = perf[i].algo;
          const bool transform = a == CUDNN_CONVOLUTION_FWD_ALGO_FFT || a == CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING ||
                                 a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD || a == CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED;
          if (!half_ && !spec_.tf32 && transform) continue;
          // The list names an algorithm once per math mode; the layer sets its one math mode itself.
          const std::string name = "cudnn_algo" + std::to_string(static_cast<int>(a));
          if (std::find(t.begin(), t.end(), name) == t.end()) t.push_back(name);
        }
      }
      // cuDNN's graph API: its heuristics' first plans (FP16, channels-last input, group 1).
      if (half_ && !mixed_ && cl && p_.group == 1) {
        try {
          const_cast<ConvLayer*>(this)->make_be(h);
          for (int i = 0; i < be_->plans(); ++i) t.push_back("cudnnbe" + std::to_string(i));
        } catch (const Error&) {
          // No graph-API plans for this problem (or this cuDNN): the other tactics remain.
        }
      }
    }
    return t;
  }

  void set_tactic(const std::string& t, Handles& h) override {
    scratch_ = 0;
    if (t == "direct" || t == "depthwise" || t == "stem" || t == "stem_mma") {
      KESTREL_CHECK(t != "stem" || conv_stem_supports(p_), "tactic stem does not apply");
      KESTREL_CHECK(t != "stem_mma" || (mixed_ && !has_res_ && conv_stem_mma_supports(p_)), "tactic stem_mma does not apply");
      tactic_ = t;
      return;
    }
    if (t.rfind("igemm_", 0) == 0) {
      KESTREL_CHECK(half_ && !mixed_ && p_.group == 1 && p_.C % 8 == 0, "tactic ", t, " does not apply");
      prepare_igemm(t);
      scratch_ = align_up(igemm_scratch_bytes(t, p_), 256);
      counters_.reserve(igemm_counters(t, p_));
      tactic_ = t;
      return;
    }
    if (t.rfind("cudnnbe", 0) == 0) {
      KESTREL_CHECK(symmetric_pads_ && half_ && !mixed_ && p_.group == 1, "tactic ", t, " does not apply");
      make_be(h);
      be_plan_ = std::stoi(t.substr(7));
      KESTREL_CHECK(be_plan_ >= 0 && be_plan_ < be_->plans(), "tactic ", t, ": cuDNN offers ", be_->plans(), " plans here");
      ws_bytes_ = align_up(be_->workspace(be_plan_), 256);
      epilogue_ = has_bias_ || has_res_ || p_.act != kActNone || !y_dense_nhwc_;
      tmp_bytes_ = epilogue_ ? align_up(static_cast<int64_t>(p_.N) * p_.OH * p_.OW * p_.K * 2, 256) : 0;
      scratch_ = ws_bytes_ + tmp_bytes_;
      tactic_ = t;
      return;
    }
    if (t.rfind("cudnn_algo", 0) == 0) {
      KESTREL_CHECK(symmetric_pads_, "cuDNN needs symmetric padding");
      make_descriptors();
      algo_ = static_cast<cudnnConvolutionFwdAlgo_t>(std::stoi(t.substr(10)));
      size_t ws = 0;
      KCUDNN(cudnnGetConvolutionForwardWorkspaceSize(h.cudnn, xd_, wd_, cd_, yd_, algo_, &ws));
      ws_bytes_ = align_up(static_cast<int64_t>(ws), 256);
      epilogue_ = has_bias_ || has_res_ || p_.act != kActNone || !y_dense_nhwc_;
      tmp_bytes_ = epilogue_ ? align_up(static_cast<int64_t>(p_.N) * p_.OH * p_.OW * p_.K * (half_ ? 2 : 4), 256) : 0;
      scratch_ = ws_bytes_ + tmp_bytes_;
      tactic_ = t;
      return;
    }
    fail("unknown convolution tactic '", t, "'");
  }

  int64_t scratch_bytes() const override { return scratch_; }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles& h) override {
    const void* x = io.in[0];
    const void* w = io.in[1];
    const float* b = has_bias_ ? static_cast<const float*>(io.in[2]) : nullptr;
    const void* r = has_res_ ? io.in[3] : nullptr;
    void* y = io.out[0];
    if (tactic_ == "stem_mma" && conv_stem_mma_pointers_ok(static_cast<const float*>(x), y)) {
      launch_conv_stem_mma(p_, static_cast<const float*>(x), static_cast<const float*>(w), b, static_cast<__half*>(y), stream);
    } else if (tactic_ == "stem" || tactic_ == "stem_mma") {  // stem_mma on pointers it cannot take: the FP32 kernel
      KESTREL_CHECK(reinterpret_cast<uintptr_t>(y) % 16 == 0, "stem convolution output is not 16-byte aligned");
      if (half_)
        launch_conv_stem(p_, static_cast<const float*>(x), static_cast<const float*>(w), b, static_cast<__half*>(y), stream);
      else
        launch_conv_stem(p_, static_cast<const float*>(x), static_cast<const float*>(w), b, static_cast<float*>(y), stream);
    } else if (tactic_ == "direct") {
      if (mixed_)
        launch_conv_direct(p_, static_cast<const float*>(x), static_cast<const float*>(w), b, static_cast<const __half*>(r),
                           static_cast<__half*>(y), k_fastest_, stream);
      else if (half_)
        launch_conv_direct(p_, static_cast<const __half*>(x), static_cast<const __half*>(w), b, static_cast<const __half*>(r),
                           static_cast<__half*>(y), k_fastest_, stream);
      else
        launch_conv_direct(p_, static_cast<const float*>(x), static_cast<const float*>(w), b, static_cast<const float*>(r),
                           static_cast<float*>(y), k_fastest_, stream);
    } else if (tactic_ == "depthwise") {
      if (half_)
        launch_conv_depthwise(p_, static_cast<const __half*>(x), static_cast<const __half*>(w), b,
                              static_cast<const __half*>(r), static_cast<__half*>(y), stream);
      else
        launch_conv_depthwise(p_, static_cast<const float*>(x), static_cast<const float*>(w), b, static_cast<const float*>(r),
                              static_cast<float*>(y), stream);
    } else if (tactic_.rfind("igemm_", 0) == 0) {
      KESTREL_CHECK(reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 4 == 0 &&
                        reinterpret_cast<uintptr_t>(r) % 4 == 0,
                    "convolution buffers are not aligned for the tensor-core kernel");
      launch_conv_igemm(tactic_, p_, x, w, b, r, y, io.scratch, counters_.get(), stream);
    } else {
      KCUDNN(cudnnSetStream(h.cudnn, stream));
      const float one = 1.f, zero = 0.f;
      char* scratch = static_cast<char*>(io.scratch);
      void* ws = ws_bytes_ ? scratch : nullptr;
      void* out = epilogue_ ? scratch + ws_bytes_ : y;
      if (tactic_.rfind("cudnnbe", 0) == 0)
        be_->execute(be_plan_, h.cudnn, x, w, out, ws);
      else
        KCUDNN(cudnnConvolutionForward(h.cudnn, &one, xd_, x, wd_, w, cd_, algo_, ws, static_cast<size_t>(ws_bytes_), &zero,
                                       yd_, out));
      auto a16 = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % 16 == 0; };
      if (epilogue_ && vec_epi_ && a16(out) && a16(y) && (!r || a16(r))) {
        launch_conv_epilogue_vec(p_, static_cast<const __half*>(out), b, static_cast<const __half*>(r), static_cast<__half*>(y),
                                 ldy_, ldr_, stream);
      } else if (epilogue_) {
        if (half_)
          launch_conv_epilogue(p_, static_cast<const __half*>(out), b, static_cast<const __half*>(r), static_cast<__half*>(y), stream);
        else
          launch_conv_epilogue(p_, static_cast<const float*>(out), b, static_cast<const float*>(r), static_cast<float*>(y), stream);
      }
    }
  }

 private:
  void make_descriptors() {
    if (xd_) return;
    const cudnnDataType_t dt = half_ ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
    KCUDNN(cudnnCreateTensorDescriptor(&xd_));
    KCUDNN(cudnnCreateTensorDescriptor(&yd_));
    KCUDNN(cudnnCreateFilterDescriptor(&wd_));
    KCUDNN(cudnnCreateConvolutionDescriptor(&cd_));
    KCUDNN(cudnnSetTensor4dDescriptorEx(xd_, dt, p_.N, p_.C, p_.H, p_.W, static_cast<int>(p_.xs[0]), static_cast<int>(p_.xs[1]),
                                        static_cast<int>(p_.xs[2]), static_cast<int>(p_.xs[3])));
    // cuDNN always writes a dense NHWC result (into scratch when our epilogue follows).
    KCUDNN(cudnnSetTensor4dDescriptorEx(yd_, dt, p_.N, p_.K, p_.OH, p_.OW, p_.OH * p_.OW * p_.K, 1, p_.OW * p_.K, p_.K));
    KCUDNN(cudnnSetFilter4dDescriptor(wd_, dt, CUDNN_TENSOR_NHWC, p_.K, p_.C / p_.group, p_.KH, p_.KW));
    KCUDNN(cudnnSetConvolution2dDescriptor(cd_, p_.ph, p_.pw, p_.sh, p_.sw, p_.dh, p_.dw, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
    KCUDNN(cudnnSetConvolutionGroupCount(cd_, p_.group));
    // True FP32 unless --tf32: FMA-only kernels. FP16 data may use the tensor cores (FP32 accumulate).
    const cudnnMathType_t math = half_ ? CUDNN_TENSOR_OP_MATH : (spec_.tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH);
    KCUDNN(cudnnSetConvolutionMathType(cd_, math));
  }

  void make_be(Handles& h) {
    if (be_) return;
    KESTREL_CHECK(symmetric_pads_, "cuDNN needs symmetric padding");
    be_ = std::make_unique<CudnnBeConv>(p_, h.cudnn, 4, int64_t{1} << 30);
  }

  void destroy_cudnn() {
    if (xd_) cudnnDestroyTensorDescriptor(xd_);
    if (yd_) cudnnDestroyTensorDescriptor(yd_);
    if (wd_) cudnnDestroyFilterDescriptor(wd_);
    if (cd_) cudnnDestroyConvolutionDescriptor(cd_);
    xd_ = yd_ = nullptr;
    wd_ = nullptr;
    cd_ = nullptr;
  }

  ConvParams p_;
  std::unique_ptr<CudnnBeConv> be_;
  int be_plan_ = 0;
  bool vec_epi_ = false;
  int64_t ldy_ = 0, ldr_ = 0;
  SplitKCounters counters_;
  bool mixed_ = false;
  bool has_bias_ = false, has_res_ = false, half_ = false, symmetric_pads_ = true, y_dense_nhwc_ = false, k_fastest_ = true;
  int64_t scratch_ = 0, ws_bytes_ = 0, tmp_bytes_ = 0;
  bool epilogue_ = false;
  cudnnTensorDescriptor_t xd_ = nullptr, yd_ = nullptr;
  cudnnFilterDescriptor_t wd_ = nullptr;
  cudnnConvolutionDescriptor_t cd_ = nullptr;
  cudnnConvolutionFwdAlgo_t algo_ = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM;
};

}  // namespace

std::unique_ptr<Layer> make_conv(const LayerSpec& s) { return std::make_unique<ConvLayer>(s); }

}  // namespace kestrel::cuda
