// Elementwise ops (unary, broadcasting binary, variadic Min/Max/Sum, Where, Clip, Cast) as one
// strided kernel: every operand is a strided view of the output's index space (stride 0 where it
// broadcasts), reordered to the output's memory order and coalesced on the host, so a dense NHWC op
// runs as a flat loop. Values are computed in float whatever the storage dtype.
#include <map>

#include "backend/cuda/check.h"
#include "backend/cuda/device_common.cuh"
#include "backend/cuda/layers.h"

namespace kestrel::cuda {

namespace {

constexpr int kMaxIn = 8;

enum EwOp : int {
  kRelu, kLeaky, kSigmoid, kHardSigmoid, kHardSwish, kTanh, kErf, kExp, kLog, kSqrt, kRecip, kFloor, kCeil,
  kRound, kNeg, kAbs, kNot, kClip, kCast,
  kAdd, kSub, kMul, kDiv, kPow, kEqual, kLess, kGreater, kMin, kMax, kSum, kWhere,
};

struct EwArgs {
  int op, n_in, numel, out_dt;
  float alpha, beta;
  void* out;
  Strided out_s;
  const void* in[kMaxIn];
  int in_dt[kMaxIn];
  Strided in_s[kMaxIn];
};

__device__ __forceinline__ float unary(int op, float v, float a, float b) {
  switch (op) {
    case kRelu: return v > 0.f ? v : 0.f;
    case kLeaky: return v >= 0.f ? v : v * a;
    case kSigmoid: return 1.f / (1.f + expf(-v));
    case kHardSigmoid: return fmaxf(0.f, fminf(1.f, a * v + b));
    case kHardSwish: return v * fmaxf(0.f, fminf(1.f, v / 6.f + 0.5f));
    case kTanh: return tanhf(v);
    case kErf: return erff(v);
    case kExp: return expf(v);
    case kLog: return logf(v);
    case kSqrt: return sqrtf(v);
    case kRecip: return 1.f / v;
    case kFloor: return floorf(v);
    case kCeil: return ceilf(v);
    case kRound: return nearbyintf(v);
    case kNeg: return -v;
    case kAbs: return fabsf(v);
    case kNot: return v == 0.f ? 1.f : 0.f;
    case kClip: return fminf(fmaxf(v, a), b);
    default: return v;  // kCast
  }
}

__device__ __forceinline__ float binary(int op, float x, float y) {
  switch (op) {
    case kAdd:
    case kSum: return x + y;
    case kSub: return x - y;
    case kMul: return x * y;
    case kDiv: return x / y;
    case kPow: return y == 2.f ? x * x : (y == 0.5f ? sqrtf(x) : powf(x, y));
    case kEqual: return x == y ? 1.f : 0.f;
    case kLess: return x < y ? 1.f : 0.f;
    case kGreater: return x > y ? 1.f : 0.f;
    case kMin: return fminf(x, y);
    case kMax: return fmaxf(x, y);
    default: return 0.f;
  }
}

__global__ void ew_kernel(const __grid_constant__ EwArgs a) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= a.numel) return;
  float v;
  if (a.op == kWhere) {
    const float c = load_as_float(a.in[0], a.in_dt[0], strided_offset(a.in_s[0], i));
    v = c != 0.f ? load_as_float(a.in[1], a.in_dt[1], strided_offset(a.in_s[1], i))
                 : load_as_float(a.in[2], a.in_dt[2], strided_offset(a.in_s[2], i));
  } else {
    v = load_as_float(a.in[0], a.in_dt[0], strided_offset(a.in_s[0], i));
    if (a.n_in == 1) {
      v = unary(a.op, v, a.alpha, a.beta);
    } else {
      for (int k = 1; k < a.n_in; ++k) v = binary(a.op, v, load_as_float(a.in[k], a.in_dt[k], strided_offset(a.in_s[k], i)));
    }
  }
  store_from_float(a.out, a.out_dt, strided_offset(a.out_s, i), v);
}

// The rank-1 case (dense same-layout operands, scalars) without div/mod: most trunk ops land here.
__global__ void ew_flat_kernel(const __grid_constant__ EwArgs a) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= a.numel) return;
  float v = load_as_float(a.in[0], a.in_dt[0], i * a.in_s[0].stride[0]);
  if (a.op == kWhere) {
    v = v != 0.f ? load_as_float(a.in[1], a.in_dt[1], i * a.in_s[1].stride[0])
                 : load_as_float(a.in[2], a.in_dt[2], i * a.in_s[2].stride[0]);
  } else if (a.n_in == 1) {
    v = unary(a.op, v, a.alpha, a.beta);
  } else {
    for (int k = 1; k < a.n_in; ++k) v = binary(a.op, v, load_as_float(a.in[k], a.in_dt[k], i * a.in_s[k].stride[0]));
  }
  store_from_float(a.out, a.out_dt, i * a.out_s.stride[0], v);
}

const std::map<std::string, int>& op_codes() {
  static const std::map<std::string, int> m = {
      {"Relu", kRelu}, {"LeakyRelu", kLeaky}, {"Sigmoid", kSigmoid}, {"HardSigmoid", kHardSigmoid},
      {"HardSwish", kHardSwish}, {"Tanh", kTanh}, {"Erf", kErf}, {"Exp", kExp}, {"Log", kLog}, {"Sqrt", kSqrt},
      {"Reciprocal", kRecip}, {"Floor", kFloor}, {"Ceil", kCeil}, {"Round", kRound}, {"Neg", kNeg}, {"Abs", kAbs},
      {"Not", kNot}, {"Clip", kClip}, {"Cast", kCast}, {"Add", kAdd}, {"Sub", kSub}, {"Mul", kMul}, {"Div", kDiv},
      {"Pow", kPow}, {"Equal", kEqual}, {"Less", kLess}, {"Greater", kGreater}, {"Min", kMin}, {"Max", kMax},
      {"Sum", kSum}, {"Where", kWhere},
  };
  return m;
}

class ElementwiseLayer : public Layer {
 public:
  explicit ElementwiseLayer(const LayerSpec& s) : Layer(s) {
    const auto& codes = op_codes();
    auto it = codes.find(s.op);
    KESTREL_CHECK(it != codes.end(), "no elementwise kernel for ", s.op);
    a_ = {};
    a_.op = it->second;
    const TensorMeta& y = *s.out.at(0);
    a_.numel = static_cast<int>(y.numel());
    a_.out_dt = static_cast<int>(y.dtype);
    a_.out_s = make_strided(y);
    a_.alpha = s.attrs.f("alpha", s.op == "LeakyRelu" ? 0.01f : 0.2f);
    a_.beta = s.attrs.f("beta", 0.5f);
    if (s.op == "Clip") {
      a_.alpha = s.attrs.f("min", -INFINITY);
      a_.beta = s.attrs.f("max", INFINITY);
    }
    // Clip with min/max as (non-constant) tensors is not supported; constants were folded to attrs.
    const size_t n_in = s.op == "Clip" ? 1 : s.in.size();
    KESTREL_CHECK(n_in >= 1 && n_in <= static_cast<size_t>(kMaxIn), s.op, " with ", n_in, " inputs is not supported on the GPU");
    a_.n_in = static_cast<int>(n_in);
    std::vector<Strided*> views = {&a_.out_s};
    for (size_t k = 0; k < n_in; ++k) {
      KESTREL_CHECK(s.in[k], s.op, ": input ", k, " is missing");
      a_.in_dt[k] = static_cast<int>(s.in[k]->dtype);
      a_.in_s[k] = broadcast_strided(*s.in[k], y.shape);
      views.push_back(&a_.in_s[k]);
    }
    optimize_views(views);
  }

  void enqueue(const LayerIO& io, cudaStream_t stream, Handles&) override {
    if (a_.numel == 0) return;
    EwArgs a = a_;
    a.out = io.out[0];
    for (int k = 0; k < a.n_in; ++k) a.in[k] = io.in[k];
    constexpr int kThreads = 256;
    if (a.out_s.rank == 1) ew_flat_kernel<<<blocks_for(a.numel, kThreads), kThreads, 0, stream>>>(a);
    else ew_kernel<<<blocks_for(a.numel, kThreads), kThreads, 0, stream>>>(a);
    KLAUNCH("elementwise");
  }

 private:
  EwArgs a_;
};

}  // namespace

std::unique_ptr<Layer> make_elementwise(const LayerSpec& s) { return std::make_unique<ElementwiseLayer>(s); }
bool is_elementwise_op(const std::string& op) { return op_codes().count(op) != 0; }

}  // namespace kestrel::cuda
