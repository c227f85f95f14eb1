#include "backend/cuda/cudnn_be.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <sstream>

#include "backend/cuda/check.h"
#include "backend/cuda/cudnn_plan_cache.h"

namespace kestrel::cuda {

namespace {

// Deprecated names in newer headers (still accepted), required by the cuDNN 9.x the GPU machines run.
constexpr auto kAttrGraphHandle = static_cast<cudnnBackendAttributeName_t>(800);  // OPERATIONGRAPH_HANDLE
constexpr auto kAttrPlanHandle = static_cast<cudnnBackendAttributeName_t>(400);   // EXECUTION_PLAN_HANDLE

// Variant-pack ids of the graphs' tensors.
enum : int64_t { kUidX = 'x', kUidW = 'w', kUidY = 'y', kUidScale = 's', kUidBias = 'b', kUidRes = 'r',
                 kUidOutScale = 'q', kUidResInvScale = 'i', kUidResScale = 'j', kUidVirtual = 1000 };

// An engine's notes of one kind (behaviour or numerical); false when they cannot be read.
template <typename Note>
bool engine_notes(cudnnBackendDescriptor_t eng, cudnnBackendAttributeName_t attr, cudnnBackendAttributeType_t type,
                  std::vector<Note>& notes) {
  constexpr int64_t kMax = 32;  // more than either note enum has
  notes.resize(kMax);
  int64_t n = 0;
  if (cudnnBackendGetAttribute(eng, attr, type, kMax, &n, notes.data()) != CUDNN_STATUS_SUCCESS) return false;
  notes.resize(static_cast<size_t>(std::min(n, kMax)));
  return true;
}

// Whether the engine of a config may be used: its notes can be read and name none of the excluded
// behaviours.
bool engine_allowed(cudnnBackendDescriptor_t eng, bool runtime_compiled) {
  std::vector<cudnnBackendBehaviorNote_t> bn;
  std::vector<cudnnBackendNumericalNote_t> nn;
  if (!engine_notes(eng, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE, bn) ||
      !engine_notes(eng, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE, nn))
    return false;
  for (auto b : bn)
    if (b == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION && !runtime_compiled) return false;
  for (auto x : nn)
    if (x == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC || x == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION) return false;
  return true;
}

}  // namespace

void dense_nhwc(const int64_t (&d)[4], int64_t (&s)[4]) {
  s[0] = d[1] * d[2] * d[3];
  s[1] = 1;
  s[2] = d[3] * d[1];
  s[3] = d[1];
}

CudnnGraph::~CudnnGraph() {
  for (auto it = owned_.rbegin(); it != owned_.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
}

CudnnGraph::Desc CudnnGraph::make(cudnnBackendDescriptorType_t t) {
  Desc d = nullptr;
  KCUDNN(cudnnBackendCreateDescriptor(t, &d));
  owned_.push_back(d);
  return d;
}

CudnnGraph::Desc CudnnGraph::tensor(int64_t uid, cudnnDataType_t dt, const int64_t (&dims)[4], const int64_t (&strides)[4],
                                    bool is_virtual) {
  Desc t = make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
  const int64_t align = 16;
  KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &dt));
  KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
  KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
  KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
  KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
  if (is_virtual) {
    const bool v = true;
    KCUDNN(cudnnBackendSetAttribute(t, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &v));
  }
  KCUDNN(cudnnBackendFinalize(t));
  uid_[t] = uid;
  std::ostringstream os;
  os << "T" << uid << ":" << static_cast<int>(dt) << (is_virtual ? "v" : "") << "[" << dims[0] << "," << dims[1] << ","
     << dims[2] << "," << dims[3] << "/" << strides[0] << "," << strides[1] << "," << strides[2] << "," << strides[3] << "] ";
  sig_ += os.str();
  return t;
}

void CudnnGraph::conv(const ConvParams& p, Desc x, Desc w, Desc y, cudnnDataType_t compute) {
  KESTREL_CHECK(p.group == 1, "internal: cuDNN graph convolutions have group 1");
  Desc conv = make(CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR);
  const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  const int64_t dims = 2, pad[2] = {p.ph, p.pw}, stride[2] = {p.sh, p.sw}, dil[2] = {p.dh, p.dw};
  KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute));
  KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
  KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims));
  KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, 2, dil));
  KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, 2, stride));
  KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
  KCUDNN(cudnnBackendSetAttribute(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, 2, pad));
  KCUDNN(cudnnBackendFinalize(conv));

  Desc op = make(CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR);
  const float alpha = 1.f, beta = 0.f;
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &w));
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &conv));
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA, CUDNN_TYPE_FLOAT, 1, &alpha));
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA, CUDNN_TYPE_FLOAT, 1, &beta));
  KCUDNN(cudnnBackendFinalize(op));
  ops_.push_back(op);
  std::ostringstream os;
  os << "conv(" << uid_[x] << "," << uid_[w] << "->" << uid_[y] << " c" << static_cast<int>(compute) << " p" << p.ph << ","
     << p.pw << " s" << p.sh << "," << p.sw << " d" << p.dh << "," << p.dw << ") ";
  sig_ += os.str();
}

void CudnnGraph::pointwise(cudnnPointwiseMode_t mode, Desc x, Desc b, Desc y) {
  Desc pw = make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
  const cudnnDataType_t prec = CUDNN_DATA_FLOAT;
  KCUDNN(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode));
  KCUDNN(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &prec));
  if (mode == CUDNN_POINTWISE_SWISH_FWD) {
    const double beta = 1.0;  // x * sigmoid(beta x): SiLU
    KCUDNN(cudnnBackendSetAttribute(pw, CUDNN_ATTR_POINTWISE_SWISH_BETA, CUDNN_TYPE_DOUBLE, 1, &beta));
  }
  KCUDNN(cudnnBackendFinalize(pw));
  Desc op = make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &pw));
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x));
  if (b) KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b));
  KCUDNN(cudnnBackendSetAttribute(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y));
  KCUDNN(cudnnBackendFinalize(op));
  ops_.push_back(op);
  std::ostringstream os;
  os << "pw" << static_cast<int>(mode) << "(" << uid_[x] << "," << (b ? uid_[b] : -1) << "->" << uid_[y] << ") ";
  sig_ += os.str();
}

void CudnnGraph::finalize(cudnnHandle_t h, int max_plans, int64_t ws_limit, bool runtime_compiled, bool eager) {
  // Without a handle cuDNN's heuristics return nothing, and an empty graph would look like one cuDNN
  // has no plans for (planning without a GPU passes no handle).
  KESTREL_CHECK(h != nullptr, "internal: a cuDNN graph needs a cuDNN handle");
  ws_limit_ = ws_limit;
  cache_plans_ = runtime_compiled;
  Desc graph = make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  KCUDNN(cudnnBackendSetAttribute(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                  static_cast<int64_t>(ops_.size()), ops_.data()));
  // Required by older 9.x releases, ignored (deprecated) by newer ones: a refusal is not an error.
  (void)cudnnBackendSetAttribute(graph, kAttrGraphHandle, CUDNN_TYPE_HANDLE, 1, &h);
  KCUDNN(cudnnBackendFinalize(graph));

  Desc heur = make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  const cudnnBackendHeurMode_t hm = CUDNN_HEUR_MODE_A;
  KCUDNN(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph));
  KCUDNN(cudnnBackendSetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &hm));
  KCUDNN(cudnnBackendFinalize(heur));
  constexpr int kAsk = 12;
  Desc cfgs[kAsk];
  for (auto& c : cfgs) c = make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  int64_t got = 0;
  KCUDNN(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, kAsk, &got, cfgs));

  for (int64_t i = 0; i < got && plans() < max_plans; ++i) {
    Desc eng = make(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    int64_t n = 0;
    if (cudnnBackendGetAttribute(cfgs[i], CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &eng) !=
            CUDNN_STATUS_SUCCESS ||
        n != 1 || !engine_allowed(eng, runtime_compiled))
      continue;
    cfgs_.push_back(cfgs[i]);
    plans_.push_back(nullptr);
    ws_.push_back(-1);
    if (!eager) continue;
    try {
      build(plans() - 1, h);
    } catch (const Error&) {
      cfgs_.pop_back();
      plans_.pop_back();
      ws_.pop_back();
    }
  }
}

void CudnnGraph::build(int i, cudnnHandle_t h) {
  KESTREL_CHECK(i >= 0 && i < plans(), "internal: cuDNN plan ", i, " of ", plans());
  if (plans_[i]) return;
  const std::string key = plan_key(i);
  Desc plan = nullptr;
  if (cache_plans_) {
    if (const std::optional<std::string> json = load_cudnn_plan(h, key)) {
      Desc restored = make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
      (void)cudnnBackendSetAttribute(restored, kAttrPlanHandle, CUDNN_TYPE_HANDLE, 1, &h);
      if (cudnnBackendSetAttribute(restored, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR,
                                   static_cast<int64_t>(json->size()), json->data()) == CUDNN_STATUS_SUCCESS &&
          cudnnBackendFinalize(restored) == CUDNN_STATUS_SUCCESS)
        plan = restored;  // else a stale entry: compile below and overwrite it
    }
  }
  if (!plan) {
    plan = make(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    (void)cudnnBackendSetAttribute(plan, kAttrPlanHandle, CUDNN_TYPE_HANDLE, 1, &h);
    KCUDNN(cudnnBackendSetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &cfgs_[i]));
    KCUDNN(cudnnBackendFinalize(plan));
    int64_t n = 0;
    if (cache_plans_ && cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, 0, &n,
                                                 nullptr) == CUDNN_STATUS_SUCCESS &&
        n > 0) {
      std::string json(static_cast<size_t>(n), '\0');
      if (cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION, CUDNN_TYPE_CHAR, n, &n,
                                   json.data()) == CUDNN_STATUS_SUCCESS) {
        json.resize(static_cast<size_t>(n));
        while (!json.empty() && json.back() == '\0') json.pop_back();
        store_cudnn_plan(h, key, json);
      }
    }
  }
  int64_t wsb = 0, nw = 0;
  KCUDNN(cudnnBackendGetAttribute(plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &nw, &wsb));
  KESTREL_CHECK(wsb >= 0 && wsb <= ws_limit_, "cuDNN plan ", i, " needs ", wsb, " bytes of workspace (limit ", ws_limit_, ")");
  plans_[i] = plan;
  ws_[i] = wsb;
}

void CudnnGraph::compile_into_cache(int i, cudnnHandle_t h) {
  KESTREL_CHECK(i >= 0 && i < plans(), "internal: cuDNN plan ", i, " of ", plans());
  if (!cache_plans_ || plans_[i] || load_cudnn_plan(h, plan_key(i))) return;
  build(i, h);
}

int64_t CudnnGraph::workspace(int i) const {
  KESTREL_CHECK(i >= 0 && i < plans() && plans_[i], "internal: cuDNN plan ", i, " is not built");
  return ws_[i];
}

void CudnnGraph::execute(int i, cudnnHandle_t h, const int64_t* uids, void* const* ptrs, int n, void* ws) const {
  KESTREL_CHECK(i >= 0 && i < plans() && plans_[i], "internal: cuDNN plan ", i, " is not built");
  for (int k = 0; k < n; ++k)
    KESTREL_CHECK(reinterpret_cast<uintptr_t>(ptrs[k]) % 16 == 0, "cuDNN graph convolution: buffers are not 16-byte aligned");
  KESTREL_CHECK(ws_[i] == 0 || ws != nullptr, "internal: cuDNN graph convolution without workspace");
  cudnnBackendDescriptor_t vp = nullptr;
  KCUDNN(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
  cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
  void* wsp = ws;
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, n, uids);
  if (s == CUDNN_STATUS_SUCCESS)
    s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, n, const_cast<void**>(ptrs));
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendSetAttribute(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &wsp);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendFinalize(vp);
  if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(h, plans_[i], vp);
  cudnnBackendDestroyDescriptor(vp);
  KCUDNN(s);
}

CudnnBeConv::CudnnBeConv(const ConvParams& p, cudnnHandle_t h, int max_plans, int64_t ws_limit) {
  const int64_t xd[4] = {p.N, p.C, p.H, p.W}, xs[4] = {p.xs[0], p.xs[1], p.xs[2], p.xs[3]};
  const int64_t wd[4] = {p.K, p.C, p.KH, p.KW};
  const int64_t yd[4] = {p.N, p.K, p.OH, p.OW};
  int64_t ws[4], ys[4];
  dense_nhwc(wd, ws);
  dense_nhwc(yd, ys);
  g_.conv(p, g_.tensor(kUidX, CUDNN_DATA_HALF, xd, xs), g_.tensor(kUidW, CUDNN_DATA_HALF, wd, ws),
          g_.tensor(kUidY, CUDNN_DATA_HALF, yd, ys), CUDNN_DATA_FLOAT);
  g_.finalize(h, max_plans, ws_limit, /*runtime_compiled=*/false, /*eager=*/true);
}

void CudnnBeConv::execute(int i, cudnnHandle_t h, const void* x, const void* w, void* y, void* ws) const {
  const int64_t uids[3] = {kUidX, kUidW, kUidY};
  void* const ptrs[3] = {const_cast<void*>(x), const_cast<void*>(w), y};
  g_.execute(i, h, uids, ptrs, 3, ws);
}

bool CudnnInt8Conv::supports(const ConvParams& p, Residual res, bool int8_out) {
  // cuDNN reads and writes 16-byte aligned pixels only: channels-last strides of 16 bytes' multiples.
  const bool aligned = p.xs[3] % 16 == 0 && p.ys[3] * (int8_out ? 1 : 2) % 16 == 0 &&
                       (res == Residual::None || p.rs[3] * (res == Residual::Int8 ? 1 : 2) % 16 == 0);
  return aligned && p.group == 1 && p.C % 4 == 0 && p.K % 4 == 0 &&
         (p.act == kActNone || p.act == kActRelu || p.act == kActSilu);
}

CudnnInt8Conv::CudnnInt8Conv(const ConvParams& p, cudnnHandle_t h, bool has_bias, Residual res, bool int8_out,
                             int max_plans, int64_t ws_limit)
    : has_bias_(has_bias), int8_out_(int8_out), res_(res) {
  KESTREL_CHECK(supports(p, res, int8_out), "internal: no cuDNN INT8 convolution for this layer");
  const int64_t xd[4] = {p.N, p.C, p.H, p.W}, xs[4] = {p.xs[0], p.xs[1], p.xs[2], p.xs[3]};
  const int64_t wd[4] = {p.K, p.C, p.KH, p.KW};
  const int64_t yd[4] = {p.N, p.K, p.OH, p.OW}, ys[4] = {p.ys[0], p.ys[1], p.ys[2], p.ys[3]};
  const int64_t cd[4] = {1, p.K, 1, 1}, cs[4] = {p.K, 1, 1, 1};
  const int64_t one[4] = {1, 1, 1, 1};
  int64_t ws[4], vs[4];
  dense_nhwc(wd, ws);
  dense_nhwc(yd, vs);
  int64_t uid = kUidVirtual;
  // Each step of the epilogue writes a new virtual float tensor; the last writes y.
  auto next = [&] { return g_.tensor(uid++, CUDNN_DATA_FLOAT, yd, vs, true); };
  CudnnGraph::Desc acc = g_.tensor(uid++, CUDNN_DATA_INT32, yd, vs, true);
  g_.conv(p, g_.tensor(kUidX, CUDNN_DATA_INT8, xd, xs), g_.tensor(kUidW, CUDNN_DATA_INT8, wd, ws), acc, CUDNN_DATA_INT32);
  struct Step { cudnnPointwiseMode_t mode; CudnnGraph::Desc b; };
  std::vector<Step> steps{{CUDNN_POINTWISE_MUL, g_.tensor(kUidScale, CUDNN_DATA_FLOAT, cd, cs)}};
  if (has_bias) steps.push_back({CUDNN_POINTWISE_ADD, g_.tensor(kUidBias, CUDNN_DATA_FLOAT, cd, cs)});
  if (p.act == kActSilu) steps.push_back({CUDNN_POINTWISE_SWISH_FWD, nullptr});
  if (p.act == kActRelu) steps.push_back({CUDNN_POINTWISE_RELU_FWD, nullptr});
  const int64_t rs[4] = {p.rs[0], p.rs[1], p.rs[2], p.rs[3]};
  if (res == Residual::Half) steps.push_back({CUDNN_POINTWISE_ADD, g_.tensor(kUidRes, CUDNN_DATA_HALF, yd, rs)});
  if (res == Residual::Int8) {
    steps.push_back({CUDNN_POINTWISE_MUL, g_.tensor(kUidResInvScale, CUDNN_DATA_FLOAT, one, one)});
    steps.push_back({CUDNN_POINTWISE_ADD, g_.tensor(kUidRes, CUDNN_DATA_INT8, yd, rs)});
    steps.push_back({CUDNN_POINTWISE_MUL, g_.tensor(kUidResScale, CUDNN_DATA_FLOAT, one, one)});
  }
  if (int8_out) steps.push_back({CUDNN_POINTWISE_MUL, g_.tensor(kUidOutScale, CUDNN_DATA_FLOAT, one, one)});
  CudnnGraph::Desc cur = acc;
  for (size_t i = 0; i < steps.size(); ++i) {
    CudnnGraph::Desc out = i + 1 < steps.size() ? next()
                                                : g_.tensor(kUidY, int8_out ? CUDNN_DATA_INT8 : CUDNN_DATA_HALF, yd, ys);
    g_.pointwise(steps[i].mode, cur, steps[i].b, out);
    cur = out;
  }
  g_.finalize(h, max_plans, ws_limit, /*runtime_compiled=*/true, /*eager=*/false);
}

void CudnnInt8Conv::execute(int i, cudnnHandle_t h, const void* x, const void* w, const float* scale, const float* bias,
                            const void* r, const Scalars& sc, void* y, void* ws) const {
  int64_t uids[9] = {kUidX, kUidW, kUidY, kUidScale};
  void* ptrs[9] = {const_cast<void*>(x), const_cast<void*>(w), y, const_cast<float*>(scale)};
  int n = 4;
  if (has_bias_) uids[n] = kUidBias, ptrs[n++] = const_cast<float*>(bias);
  if (res_ != Residual::None) uids[n] = kUidRes, ptrs[n++] = const_cast<void*>(r);
  if (res_ == Residual::Int8) {
    uids[n] = kUidResInvScale, ptrs[n++] = const_cast<float*>(sc.inv_r_scale);
    uids[n] = kUidResScale, ptrs[n++] = const_cast<float*>(sc.r_scale);
  }
  if (int8_out_) uids[n] = kUidOutScale, ptrs[n++] = const_cast<float*>(sc.inv_out_scale);
  g_.execute(i, h, uids, ptrs, n, ws);
}

}  // namespace kestrel::cuda
