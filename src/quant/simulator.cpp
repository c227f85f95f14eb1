// The CPU simulation of the INT8 engine: the Q/DQ graph run with the arithmetic the GPU will use
// (contract in include/kestrel/quant.h). INT8 convs read the int8 codes their QuantizeLinear made and
// accumulate exactly; DequantizeLinear nodes are never computed (the GPU folds them into the conv's
// scale); FP16 layers store their inputs and outputs as halves; everything else is the CPU backend.
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "backend/cpu/kernel.h"
#include "quant/int8_conv.h"
#include "quant/internal.h"

namespace kestrel::quant {

struct Simulator::Impl {
  enum class Kind { Skip, Float, Int8 };
  struct Step {
    Kind kind = Kind::Float;
    bool fp16 = false;                            // Float: FP16 layer (inputs and outputs are halves)
    bool round_output = false;                    // output stored as fp16
    std::vector<std::string> reads;               // live values it reads
    std::map<size_t, HostTensor> rounded_consts;  // Float fp16: constant inputs, pre-rounded
    // Int8 convs
    std::string x_q, residual;  // residual: a float value, or int8 codes when s_r > 0
    float s_x = 0, s_r = 0;
    std::vector<float> w, s_w, bias;
    detail::ConvGeometry geo{};
    detail::Epilogue epi;
  };
  Graph g;
  std::vector<Step> steps;
  std::vector<std::vector<std::string>> release_after;

  explicit Impl(const Graph& qdq) : g(qdq) {
    check_qdq_placement(g);
    const auto prod = g.producers();
    auto producer = [&](const std::string& v) -> const Node* {
      auto it = prod.find(v);
      return it == prod.end() ? nullptr : &g.nodes[it->second];
    };
    for (const Node& n : g.nodes) {
      Step s;
      const Node* xdq = n.op == "kestrel.Conv" ? producer(n.inputs.at(0)) : nullptr;
      if (n.op == "DequantizeLinear") {
        s.kind = Kind::Skip;
      } else if (xdq && xdq->op == "DequantizeLinear") {
        const Node* rdq = n.inputs.size() > 3 && !n.inputs[3].empty() ? producer(n.inputs[3]) : nullptr;
        prepare_int8(n, *xdq, *producer(n.inputs.at(1)), rdq && rdq->op == "DequantizeLinear" ? rdq : nullptr, s);
      } else {
        const LayerPrecision p = parse_precision(n.attrs.s(detail::kPrecisionAttr, "fp32"));
        KESTREL_CHECK(p != LayerPrecision::Int8, "node '", n.name, "' is marked int8 but has no Q/DQ input");
        s.fp16 = s.round_output = p == LayerPrecision::FP16;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
          if (n.inputs[i].empty()) continue;
          const Value& v = g.value(n.inputs[i]);
          if (!v.is_constant()) s.reads.push_back(n.inputs[i]);
          else if (s.fp16 && v.dtype == DType::F32) {
            HostTensor t = v.constant->clone();
            detail::round_fp16_inplace(t);
            s.rounded_consts[i] = std::move(t);
          }
        }
      }
      steps.push_back(std::move(s));
    }
    // Free every value after the last step that reads it (the graph outputs stay).
    std::unordered_map<std::string, size_t> last;
    for (size_t i = 0; i < steps.size(); ++i)
      for (auto& r : steps[i].reads) last[r] = i;
    const std::set<std::string> outs(g.outputs.begin(), g.outputs.end());
    release_after.resize(steps.size());
    for (auto& [name, i] : last)
      if (!outs.count(name)) release_after[i].push_back(name);
  }

  // An FP32 step whose inputs are unchanged computes exactly what the reference run computed.
  static bool reusable(const Step& s, const Node& n, const std::unordered_map<std::string, HostTensor>& reference,
                       const std::unordered_set<std::string>& changed) {
    if (s.kind != Kind::Float || s.fp16 || s.round_output) return false;
    for (auto& o : n.outputs)
      if (!o.empty() && !reference.count(o)) return false;
    for (auto& in : n.inputs)
      if (changed.count(in)) return false;
    return true;
  }

  // rdq: the residual's DequantizeLinear (a quantized residual), or null.
  void prepare_int8(const Node& conv, const Node& xdq, const Node& wdq, const Node* rdq, Step& s) const {
    s.kind = Kind::Int8;
    s.x_q = xdq.inputs.at(0);
    s.s_x = g.value(xdq.inputs.at(1)).constant->to_f32().at(0);
    const HostTensor& wq = *g.value(wdq.inputs.at(0)).constant;
    s.w.resize(static_cast<size_t>(wq.numel()));
    for (int64_t i = 0; i < wq.numel(); ++i) s.w[static_cast<size_t>(i)] = wq.data<int8_t>()[i];
    s.s_w = g.value(wdq.inputs.at(1)).constant->to_f32();
    if (s.s_w.size() == 1) s.s_w.assign(static_cast<size_t>(wq.dim(0)), s.s_w[0]);  // per-tensor weights
    if (conv.inputs.size() > 2 && !conv.inputs[2].empty()) s.bias = g.value(conv.inputs[2]).constant->to_f32();
    if (rdq) {  // read the residual's codes
      s.residual = rdq->inputs.at(0);
      s.s_r = g.value(rdq->inputs.at(1)).constant->to_f32().at(0);
    } else if (conv.inputs.size() > 3 && !conv.inputs[3].empty()) {
      s.residual = conv.inputs[3];
    }
    s.geo = detail::conv_geometry(conv, g.value(conv.inputs[0]).shape, wq.shape(), g.value(conv.outputs[0]).shape);
    s.epi = detail::parse_epilogue(conv);
    s.round_output = conv.attrs.s(detail::kOutputPrecisionAttr, "fp32") == "fp16";
    s.reads = {s.x_q};
    if (!s.residual.empty()) s.reads.push_back(s.residual);
  }

  std::vector<HostTensor> run(const std::vector<HostTensor>& inputs,
                              const std::unordered_map<std::string, HostTensor>* reference,
                              const std::vector<std::string>* keep = nullptr,
                              std::vector<HostTensor>* kept = nullptr) const {
    std::unordered_map<std::string, size_t> keep_at;  // kept value -> its slot in *kept
    std::vector<bool> got(keep ? keep->size() : 0, false);
    if (keep) {
      kept->assign(keep->size(), HostTensor());
      for (size_t k = 0; k < keep->size(); ++k) keep_at[(*keep)[k]] = k;
    }
    KESTREL_CHECK(inputs.size() == g.inputs.size(), "expected ", g.inputs.size(), " inputs, got ", inputs.size());
    std::unordered_map<std::string, HostTensor> live;
    std::unordered_set<std::string> halves;  // live values already exact in fp16
    std::unordered_set<std::string> changed;  // values that may differ from the reference run
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Value& v = g.value(g.inputs[i]);
      KESTREL_CHECK(inputs[i].shape() == v.shape && inputs[i].dtype() == v.dtype, "input '", v.name, "' expects ",
                    dtype_name(v.dtype), " ", shape_str(v.shape), ", got ", dtype_name(inputs[i].dtype()), " ",
                    shape_str(inputs[i].shape()));
      live[v.name] = inputs[i];
    }
    auto get = [&](const std::string& name) -> const HostTensor& {
      auto it = live.find(name);
      if (it != live.end()) return it->second;
      const Value& v = g.value(name);
      KESTREL_CHECK(v.is_constant(), "simulation: '", name, "' is read before it is computed");
      return *v.constant;
    };
    std::vector<HostTensor> rounded;  // fp16 copies of fp32 inputs, alive for one step
    std::vector<const HostTensor*> args;
    for (size_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      const Node& n = g.nodes[i];
      if (s.kind == Kind::Skip) continue;
      if (reference && reusable(s, n, *reference, changed)) {
        for (auto& o : n.outputs)
          if (!o.empty()) live[o] = reference->at(o);
        for (auto& name : release_after[i]) live.erase(name);
        continue;
      }
      for (auto& o : n.outputs) changed.insert(o);
      std::vector<HostTensor> outs;
      if (s.kind == Kind::Int8) {
        const HostTensor& xq = get(s.x_q);
        HostTensor y(DType::F32, g.value(n.outputs[0]).shape);
        std::vector<int32_t> acc(static_cast<size_t>(y.numel()));
        detail::int8_conv_accumulate(xq.data<int8_t>(), s.w.data(), s.geo, acc.data());
        detail::Residual r;
        if (!s.residual.empty() && s.s_r > 0) r = {nullptr, get(s.residual).data<int8_t>(), s.s_r};
        else if (!s.residual.empty()) r.f = get(s.residual).data<float>();
        detail::int8_conv_epilogue(acc.data(), s.s_x, s.s_w.data(), s.bias.empty() ? nullptr : s.bias.data(), s.epi, r,
                                   s.geo, y.data<float>());
        outs.push_back(std::move(y));
      } else {
        args.clear();
        rounded.clear();
        rounded.reserve(n.inputs.size());
        for (size_t k = 0; k < n.inputs.size(); ++k) {
          if (n.inputs[k].empty()) {
            args.push_back(nullptr);
          } else if (auto c = s.rounded_consts.find(k); c != s.rounded_consts.end()) {
            args.push_back(&c->second);
          } else {
            const HostTensor& t = get(n.inputs[k]);
            if (s.fp16 && t.dtype() == DType::F32 && !halves.count(n.inputs[k])) {
              rounded.push_back(t.clone());
              detail::round_fp16_inplace(rounded.back());
              args.push_back(&rounded.back());
            } else {
              args.push_back(&t);
            }
          }
        }
        outs = cpu::eval_node(g, n, args);
      }
      for (size_t k = 0; k < n.outputs.size(); ++k) {
        if (n.outputs[k].empty()) continue;
        if (s.round_output && outs[k].dtype() == DType::F32) {
          detail::round_fp16_inplace(outs[k]);
          halves.insert(n.outputs[k]);
        } else {
          halves.erase(n.outputs[k]);
        }
        live[n.outputs[k]] = std::move(outs[k]);
        if (auto it = keep_at.find(n.outputs[k]); it != keep_at.end()) {
          (*kept)[it->second] = live[n.outputs[k]].clone();
          got[it->second] = true;
        }
      }
      for (auto& name : release_after[i]) live.erase(name);
    }
    for (auto& [name, k] : keep_at)
      KESTREL_CHECK(got[k], "simulation: '", name, "' is not computed by the graph");
    std::vector<HostTensor> result;
    for (auto& o : g.outputs) result.push_back(get(o));
    return result;
  }
};

Simulator::Simulator(const Graph& qdq) : impl_(std::make_unique<Impl>(qdq)) {}
Simulator::~Simulator() = default;
Simulator::Simulator(Simulator&&) noexcept = default;
std::vector<HostTensor> Simulator::run(const std::vector<HostTensor>& inputs) const {
  return impl_->run(inputs, nullptr);
}
std::vector<HostTensor> Simulator::run(const std::vector<HostTensor>& inputs,
                                       const std::unordered_map<std::string, HostTensor>& reference) const {
  return impl_->run(inputs, &reference);
}
std::vector<HostTensor> Simulator::run(const std::vector<HostTensor>& inputs, const std::vector<std::string>& keep,
                                       std::vector<HostTensor>* kept) const {
  KESTREL_CHECK(kept != nullptr, "Simulator::run: no place for the kept values");
  return impl_->run(inputs, nullptr, &keep, kept);
}
const Graph& Simulator::graph() const { return impl_->g; }

std::vector<HostTensor> simulate(const Graph& qdq, const std::vector<HostTensor>& inputs) {
  return Simulator(qdq).run(inputs);
}

namespace {
class SimulatedEngine final : public InferenceEngine {
 public:
  explicit SimulatedEngine(Graph g) : sim_(g) {
    const Graph& s = sim_.graph();
    KESTREL_CHECK(s.inputs.size() == 1 && s.outputs.size() == 1, "a detector needs one input and one output; this model has ",
                  s.inputs.size(), " and ", s.outputs.size());
    int int8 = 0, convs = 0;
    for (const Node& n : s.nodes)
      if (n.op == "kestrel.Conv") {
        ++convs;
        int8 += n.attrs.s(detail::kPrecisionAttr, "") == "int8";
      }
    desc_ = "cpu int8 simulation (" + std::to_string(int8) + " of " + std::to_string(convs) + " convs int8)";
  }
  Shape input_shape() const override { return sim_.graph().value(sim_.graph().inputs[0]).shape; }
  Shape output_shape() const override { return sim_.graph().value(sim_.graph().outputs[0]).shape; }
  HostTensor infer(const HostTensor& input) override {
    HostTensor y = sim_.run({input})[0];
    return y.dtype() == DType::F32 ? y : y.cast(DType::F32);
  }
  std::string description() const override { return desc_; }
  const std::map<std::string, std::string>& metadata() const override { return sim_.graph().metadata; }

 private:
  Simulator sim_;
  std::string desc_;
};
}  // namespace

std::unique_ptr<InferenceEngine> make_simulated_engine(Graph qdq) {
  return std::make_unique<SimulatedEngine>(std::move(qdq));
}

}  // namespace kestrel::quant
