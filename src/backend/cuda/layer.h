#pragma once
// The CUDA backend's layer interface. A Layer is one plan layer bound to its tensors' metadata
// (dtype, shape, strides); it gets device pointers only at enqueue time, so one Layer object serves
// every run of a context, and the builder can time it on scratch buffers. Layers with several
// implementations expose them as named tactics; the builder times them and stores the winner.
#include <cuda_runtime.h>
#include <cublasLt.h>
#include <cudnn.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "kestrel/graph.h"
#include "kestrel/precision.h"

namespace kestrel::cuda {

constexpr int kMaxRank = 6;

struct TensorMeta {
  DType dtype = DType::F32;
  Shape shape;
  std::vector<int64_t> strides;  // elements
  bool channels_last = false;
  int64_t numel() const { return shape_numel(shape); }
  int rank() const { return static_cast<int>(shape.size()); }
  // Highest element offset + 1 (the extent a buffer must cover).
  int64_t span() const;
  bool dense_row_major() const;
  // Channels-last with unit channel stride and packed pixels of `ld` elements (ld >= C): the form
  // NHWC kernels read and write, including channel slices of a wider concat buffer.
  bool channels_last_ld(int64_t* ld = nullptr) const;
};

// Library handles a context owns (one set per context, bound to its stream).
struct Handles {
  cudnnHandle_t cudnn = nullptr;
  cublasLtHandle_t lt = nullptr;
};

struct LayerSpec {
  std::string name, op;
  Attributes attrs;
  std::vector<const TensorMeta*> in;  // nullptr: omitted optional input
  std::vector<const TensorMeta*> out;
  Precision precision = Precision::FP32;
  bool tf32 = false;
};

// A layer's spec from its tensor ids (-1: an omitted input) into `metas`; the builder's plan and a
// loaded engine both describe layers this way.
template <typename Ids>
LayerSpec make_layer_spec(const std::string& name, const std::string& op, const Attributes& attrs, const Ids& in,
                          const Ids& out, const std::vector<TensorMeta>& metas, Precision precision, bool tf32) {
  LayerSpec s;
  s.name = name;
  s.op = op;
  s.attrs = attrs;
  for (auto id : in) s.in.push_back(id < 0 ? nullptr : &metas[static_cast<size_t>(id)]);
  for (auto id : out) s.out.push_back(&metas[static_cast<size_t>(id)]);
  s.precision = precision;
  s.tf32 = tf32;
  return s;
}

struct LayerIO {
  std::vector<const void*> in;
  std::vector<void*> out;
  void* scratch = nullptr;
};

class Layer {
 public:
  explicit Layer(const LayerSpec& spec) : spec_(spec) {}
  virtual ~Layer() = default;
  // Candidate implementations; the first is the reference the others are validated against.
  virtual std::vector<std::string> tactics(Handles&) const { return {"default"}; }
  // Prepares a tactic (throws kestrel::Error when it cannot run this layer).
  virtual void set_tactic(const std::string& tactic, Handles&);
  virtual int64_t scratch_bytes() const { return 0; }
  // Whether a tactic leaves out a quantization the reference applies (an INT8 layer run one step above
  // INT8 where that is faster): the builder then validates it with the quantization error's tolerance.
  virtual bool skips_quantization(const std::string& /*tactic*/) const { return false; }
  // Compiles into a cache what set_tactic(tactic) would compile (cuDNN's run-time plans), so that
  // set_tactic then only restores it: the builder calls it for many layers at once on threads, each
  // with its own handles, before it tunes them one by one. Nothing for most layers.
  virtual void compile_ahead(const std::string& /*tactic*/, Handles&) {}
  virtual void enqueue(const LayerIO& io, cudaStream_t stream, Handles& h) = 0;
  const LayerSpec& spec() const { return spec_; }
  const std::string& tactic() const { return tactic_; }

 protected:
  LayerSpec spec_;
  std::string tactic_ = "default";
};

// How a layer may access a tensor; the builder's planner uses it to decide which tensors can become
// strided views (Concat/Split/Slice elimination) and where a layout conversion is needed.
enum class Access : uint8_t {
  Any = 0,           // arbitrary strides (generic strided kernels)
  ChannelsLast = 1,  // NHWC with unit channel stride and packed pixels (TensorMeta::channels_last_ld)
  Dense = 2,         // dense in the layout the builder chose for the tensor
};

struct OpTraits {
  bool supported = false;
  bool nhwc = false;  // computes in channels-last: its rank-4 float activations are NHWC
  std::vector<Access> in;   // per input (the last entry repeats for variadic ops)
  std::vector<Access> out;  // per output (likewise)
  Access input(size_t i) const { return in.empty() ? Access::Any : in[std::min(i, in.size() - 1)]; }
  Access output(size_t i) const { return out.empty() ? Access::Any : out[std::min(i, out.size() - 1)]; }
};

OpTraits op_traits(const std::string& op);
std::vector<std::string> gpu_ops();
std::unique_ptr<Layer> create_layer(const LayerSpec& spec);

}  // namespace kestrel::cuda
