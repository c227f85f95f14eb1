// NetworkDefinition: layers are kept in creation order (which is topological, since a layer can only
// read tensors that already exist) and each lowers to Graph nodes. Lowering and shape inference are
// incremental: `dirty_from` marks the first layer whose nodes are stale; everything from there on is
// lowered and inferred again at the next query. A new layer is lowered at once, so its mistakes are
// reported by the addX call that made them, and the layer is rolled back.
#include "kestrel/network.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <unordered_map>

#include "ir/op_registry.h"

namespace kestrel {

const char* layer_type_name(LayerType t) {
  switch (t) {
    case LayerType::kCONVOLUTION: return "Convolution";
    case LayerType::kACTIVATION: return "Activation";
    case LayerType::kELEMENTWISE: return "ElementWise";
    case LayerType::kCONCATENATION: return "Concatenation";
    case LayerType::kSPLIT: return "Split";
    case LayerType::kSLICE: return "Slice";
    case LayerType::kPOOLING: return "Pooling";
    case LayerType::kRESIZE: return "Resize";
    case LayerType::kSOFTMAX: return "SoftMax";
    case LayerType::kMATRIX_MULTIPLY: return "MatrixMultiply";
    case LayerType::kSHUFFLE: return "Shuffle";
    case LayerType::kCONSTANT: return "Constant";
    case LayerType::kUNARY: return "Unary";
    case LayerType::kREDUCE: return "Reduce";
  }
  return "?";
}

namespace detail {

struct NetworkImpl {
  NetworkDefinition* self;
  std::string name;
  Graph g;  // values only (inputs, lowered constants and activations); nodes live in the layers
  std::vector<std::unique_ptr<ILayer>> layers;
  std::vector<std::unique_ptr<ITensor>> tensors;
  std::unordered_map<std::string, ITensor*> tensor_by_name;
  std::unordered_map<std::string, ILayer*> layer_by_name;
  std::vector<ITensor*> inputs, outputs;
  std::map<std::string, std::string> metadata;
  size_t dirty_from = 0;
  size_t next_id = 0;

  NetworkImpl(NetworkDefinition* s, std::string n) : self(s), name(std::move(n)) {}

  void mark_dirty(size_t i) { dirty_from = std::min(dirty_from, i); }

  void check_owned(const ITensor* t, const char* what) const {
    KESTREL_CHECK(t != nullptr, what, ": null tensor");
    KESTREL_CHECK(t->net_ == self, what, ": tensor '", t->name_, "' belongs to another network");
  }

  std::string unique_tensor_name(const std::string& base, const ITensor* self_tensor) const {
    std::string n = base;
    for (int k = 1;; ++k) {
      auto it = tensor_by_name.find(n);
      if (it == tensor_by_name.end() || it->second == self_tensor) return n;
      n = base + "_" + std::to_string(k);
    }
  }

  void rename_tensor_entry(ITensor* t, const std::string& name) {
    if (t->name_ == name) return;
    tensor_by_name.erase(t->name_);
    if (t->isNetworkInput()) {
      // An input's value is not produced by any layer, so it is renamed in place.
      Value v = g.value(t->name_);
      g.remove_value(t->name_);
      v.name = name;
      g.add_value(std::move(v));
    }
    t->name_ = name;
    tensor_by_name[name] = t;
    mark_dirty(t->producer_ ? t->producer_->index_ : 0);
  }

  // Auto-named outputs follow the layer's name (and, for activations, its type).
  void refresh_output_names(ILayer& L) {
    for (size_t i = 0; i < L.outputs_.size(); ++i) {
      ITensor* t = L.outputs_[i];
      if (t->user_named_) continue;
      rename_tensor_entry(t, unique_tensor_name(L.output_node_name() + "_output_" + std::to_string(i), t));
    }
  }

  void lower_layer(ILayer& L);

  void sync() {
    while (dirty_from < layers.size()) {
      lower_layer(*layers[dirty_from]);
      ++dirty_from;
    }
  }

  void remove_layer_values(ILayer& L) {
    for (auto& v : L.value_names_) g.remove_value(v);
    L.value_names_.clear();
    L.nodes_.clear();
  }

  template <class L>
  L* add(std::unique_ptr<L> layer, const std::vector<ITensor*>& ins, size_t n_outputs) {
    for (ITensor* t : ins) check_owned(t, layer_type_name(layer->getType()));
    sync();  // report a pending error against the layer that has it, before adding another
    L* typed = layer.get();
    ILayer* raw = typed;  // the ILayer view: its private members are visible to this friend
    raw->index_ = layers.size();
    raw->inputs_ = ins;
    std::string base = std::string(layer_type_name(raw->getType())) + "_" + std::to_string(next_id++);
    while (layer_by_name.count(base)) base = std::string(layer_type_name(raw->getType())) + "_" + std::to_string(next_id++);
    raw->name_ = base;
    layer_by_name[base] = raw;
    layers.push_back(std::move(layer));
    for (size_t i = 0; i < n_outputs; ++i) {
      const std::string tn = unique_tensor_name(raw->output_node_name() + "_output_" + std::to_string(i), nullptr);
      tensors.push_back(std::unique_ptr<ITensor>(new ITensor(self, tn, raw, static_cast<int>(i))));
      raw->outputs_.push_back(tensors.back().get());
      tensor_by_name[tn] = tensors.back().get();
    }
    try {
      sync();
    } catch (...) {
      // Roll back: the network is as it was before the call.
      remove_layer_values(*raw);
      for (size_t i = 0; i < n_outputs; ++i) {
        tensor_by_name.erase(tensors.back()->name_);
        tensors.pop_back();
      }
      layer_by_name.erase(raw->name_);
      layers.pop_back();
      dirty_from = layers.size();
      throw;
    }
    return typed;
  }

  Graph assemble() {
    sync();
    for (auto& L : layers) L->final_check();
    KESTREL_CHECK(!outputs.empty(), "network '", name, "': no output is marked (call markOutput)");
    Graph out;
    out.name = name;
    out.opset = 17;
    for (auto& [k, v] : g.values()) out.add_value(v);
    size_t n = 0;
    for (auto& L : layers) n += L->nodes_.size();
    out.nodes.reserve(n);
    for (auto& L : layers) out.nodes.insert(out.nodes.end(), L->nodes_.begin(), L->nodes_.end());
    for (ITensor* t : inputs) out.inputs.push_back(t->name_);
    for (ITensor* t : outputs) out.outputs.push_back(t->name_);
    out.metadata = metadata;
    out.prune_values();
    out.infer_shapes();  // the nodes were inferred one by one; this re-checks the assembled graph
    return out;
  }
};

// What a layer's lower() may do: read its inputs' shapes, create constants and emit nodes (each is
// shape-inferred as soon as it is emitted, so later nodes of the same layer can look at it).
class Lowering {
 public:
  Lowering(NetworkImpl& net, ILayer& layer) : net_(net), L_(layer) {}
  const std::string& name() const { return L_.name_; }
  std::string sub(const std::string& suffix) const { return L_.name_ + "/" + suffix; }
  const std::string& in(size_t i) const { return L_.inputs_.at(i)->name_; }
  const Value& input(size_t i) const { return net_.g.value(in(i)); }
  const Shape& in_shape(size_t i) const { return input(i).shape; }
  size_t num_inputs() const { return L_.inputs_.size(); }
  const std::string& out(size_t i) const { return L_.outputs_.at(i)->name_; }
  const Shape& shape(const std::string& value) const { return net_.g.value(value).shape; }

  [[noreturn]] void error(const std::string& msg) const {
    fail(layer_type_name(L_.getType()), " layer '", L_.name_, "': ", msg);
  }

  std::string constant(const std::string& value_name, const HostTensor& t) {
    if (auto it = net_.tensor_by_name.find(value_name);
        it != net_.tensor_by_name.end() && it->second->producer_ != &L_)
      error("constant name '" + value_name + "' is already used by a tensor of the network");
    if (net_.g.has_value(value_name)) error("constant name '" + value_name + "' is already used");
    Value v;
    v.name = value_name;
    v.dtype = t.dtype();
    v.shape = t.shape();
    v.shape_known = true;
    v.constant = t;
    net_.g.add_value(std::move(v));
    L_.value_names_.push_back(value_name);
    return value_name;
  }

  void node(const std::string& op, const std::string& node_name, std::vector<std::string> inputs,
            std::vector<std::string> outputs, Attributes attrs = {}) {
    Node n;
    n.name = node_name;
    n.op = op;
    n.inputs = std::move(inputs);
    n.outputs = std::move(outputs);
    n.attrs = std::move(attrs);
    L_.nodes_.push_back(std::move(n));
    const Node& nr = L_.nodes_.back();
    for (auto& o : nr.outputs) L_.value_names_.push_back(o);
    const OpInfo* info = find_op(op);
    KESTREL_CHECK(info, "internal: op '", op, "' is not registered");
    try {
      InferContext ctx(net_.g, nr);
      info->infer(ctx);
    } catch (const Error& e) {
      // Shape inference says "<Op> node '<name>': ..."; when the node is the layer itself, the layer
      // prefix already says that much.
      std::string msg = e.what();
      const std::string prefix = nr.op + " node '" + nr.name + "': ";
      if (nr.name == L_.name_ && msg.rfind(prefix, 0) == 0) msg = msg.substr(prefix.size());
      error(msg);
    }
  }

 private:
  NetworkImpl& net_;
  ILayer& L_;
};

void NetworkImpl::lower_layer(ILayer& L) {
  remove_layer_values(L);
  Lowering lw(*this, L);
  L.lower(lw);
  for (ITensor* t : L.outputs_)
    KESTREL_CHECK(g.has_value(t->name_), "internal: ", layer_type_name(L.getType()), " layer '", L.name_,
                  "' did not produce its output '", t->name_, "'");
}

}  // namespace detail

using detail::Lowering;

namespace {

Dims filled(size_t n, int64_t v) { return Dims(n, v); }

int64_t product(const Dims& d) {
  int64_t p = 1;
  for (int64_t x : d) p *= x;
  return p;
}

std::string ints_str(const std::vector<int64_t>& v) { return shape_str(v); }

// ---------------------------------------------------------------------------------------------------
class ConvolutionLayer final : public IConvolutionLayer {
 public:
  ConvolutionLayer(NetworkDefinition* net, int64_t out, Dims kernel, HostTensor w, HostTensor b)
      : IConvolutionLayer(net, LayerType::kCONVOLUTION), out_(out), kernel_(std::move(kernel)), w_(std::move(w)),
        b_(std::move(b)) {}
  void setStride(const Dims& s) override { stride_ = s; touch(); }
  void setPadding(const Dims& p) override { pre_ = p; post_ = p; touch(); }
  void setPrePadding(const Dims& p) override { pre_ = p; touch(); }
  void setPostPadding(const Dims& p) override { post_ = p; touch(); }
  void setDilation(const Dims& d) override { dil_ = d; touch(); }
  void setNbGroups(int64_t g) override { groups_ = g; touch(); }
  void setWeightsName(const std::string& k, const std::string& b) override { wname_ = k; bname_ = b; touch(); }
  Dims getStride() const override { return stride_.empty() ? filled(kernel_.size(), 1) : stride_; }
  Dims getPrePadding() const override { return pre_.empty() ? filled(kernel_.size(), 0) : pre_; }
  Dims getPostPadding() const override { return post_.empty() ? filled(kernel_.size(), 0) : post_; }
  Dims getDilation() const override { return dil_.empty() ? filled(kernel_.size(), 1) : dil_; }
  int64_t getNbGroups() const override { return groups_; }
  int64_t getNbOutputMaps() const override { return out_; }
  Dims getKernelSize() const override { return kernel_; }
  const HostTensor& getKernelWeights() const override { return w_; }
  const HostTensor& getBiasWeights() const override { return b_; }

 private:
  std::string channel_hint(int64_t C) const {
    if (w_.rank() == kernel_.size() + 2 && w_.dim(0) == out_)
      return "input has " + std::to_string(C) + " channels but the weights " + shape_str(w_.shape()) + " expect " +
             std::to_string(w_.dim(1) * std::max<int64_t>(groups_, 1));
    return "input has " + std::to_string(C) + " channels; " + std::to_string(w_.numel()) + " weights do not make " +
           std::to_string(out_) + " x (" + std::to_string(C) + " / groups) x " + shape_str(kernel_);
  }

  void lower(Lowering& lw) override {
    const Shape& x = lw.in_shape(0);
    if (x.size() < 3) lw.error("input must be N x C x spatial, got " + shape_str(x));
    const size_t r = x.size() - 2;
    if (kernel_.size() != r)
      lw.error("kernel " + shape_str(kernel_) + " does not match the input's " + std::to_string(r) + " spatial dims");
    if (out_ <= 0) lw.error("number of output maps must be positive");
    const Dims stride = getStride(), pre = getPrePadding(), post = getPostPadding(), dil = getDilation();
    if (stride.size() != r || pre.size() != r || post.size() != r || dil.size() != r)
      lw.error("stride/padding/dilation must have " + std::to_string(r) + " entries");
    const int64_t C = x[1], kprod = product(kernel_), numel = w_.numel();
    if (w_.empty() || numel == 0) lw.error("no kernel weights");
    int64_t g = groups_;
    if (g == 0) {
      if ((out_ * C * kprod) % numel != 0) lw.error(channel_hint(C));
      g = out_ * C * kprod / numel;  // provisional, see final_check()
    }
    if (g <= 0 || C % g != 0 || out_ % g != 0)
      lw.error(groups_ ? std::to_string(g) + " groups do not divide " + std::to_string(C) + " input / " +
                             std::to_string(out_) + " output channels"
                       : channel_hint(C));
    if (numel != out_ * (C / g) * kprod) lw.error(channel_hint(C) + " (groups " + std::to_string(g) + ")");
    effective_groups_ = g;
    input_channels_ = C;
    Shape wshape = {out_, C / g};
    wshape.insert(wshape.end(), kernel_.begin(), kernel_.end());
    std::vector<std::string> ins = {lw.in(0), lw.constant(wname_.empty() ? lw.name() + ".weight" : wname_,
                                                          w_.shape() == wshape ? w_ : w_.reshaped(wshape))};
    if (!b_.empty()) {
      if (b_.numel() != out_)
        lw.error("bias has " + std::to_string(b_.numel()) + " values for " + std::to_string(out_) + " output maps");
      ins.push_back(lw.constant(bname_.empty() ? lw.name() + ".bias" : bname_,
                                b_.rank() == 1 ? b_ : b_.reshaped({out_})));
    }
    Dims pads = pre;
    pads.insert(pads.end(), post.begin(), post.end());
    Attributes a;
    a.set("dilations", dil);
    a.set("group", g);
    a.set("kernel_shape", kernel_);
    a.set("pads", pads);
    a.set("strides", stride);
    lw.node("Conv", lw.name(), std::move(ins), {lw.out(0)}, std::move(a));
  }

  void final_check() const override {
    if (groups_ == 0 && effective_groups_ != 1)
      fail("Convolution layer '", getName(), "': ", channel_hint(input_channels_), "; for a grouped convolution call setNbGroups(",
           effective_groups_, ")");
  }

  int64_t out_;
  Dims kernel_, stride_, pre_, post_, dil_;
  int64_t groups_ = 0;
  HostTensor w_, b_;
  std::string wname_, bname_;
  int64_t effective_groups_ = 1, input_channels_ = 0;
};

// ---------------------------------------------------------------------------------------------------
class ActivationLayer final : public IActivationLayer {
 public:
  ActivationLayer(NetworkDefinition* net, ActivationType t, std::optional<float> a, std::optional<float> b)
      : IActivationLayer(net, LayerType::kACTIVATION), type_(t), alpha_(a), beta_(b) {}
  void setActivationType(ActivationType t) override {
    type_ = t;
    refresh_names();
  }
  ActivationType getActivationType() const override { return type_; }
  void setAlpha(float a) override { alpha_ = a; touch(); }
  void setBeta(float b) override { beta_ = b; touch(); }
  float getAlpha() const override {
    if (alpha_) return *alpha_;
    return type_ == ActivationType::kLEAKY_RELU ? 0.01f : type_ == ActivationType::kHARD_SIGMOID ? 0.2f : 0.f;
  }
  float getBeta() const override {
    if (beta_) return *beta_;
    return type_ == ActivationType::kHARD_SIGMOID ? 0.5f : 0.f;
  }

 private:
  void refresh_names();
  std::string output_node_name() const override {
    return type_ == ActivationType::kSILU ? getName() + "/Mul" : getName();
  }
  void lower(Lowering& lw) override {
    Attributes a;
    switch (type_) {
      case ActivationType::kSILU: {
        // x * sigmoid(x) as two nodes named like PyTorch's export of nn.SiLU: <layer>/Sigmoid, <layer>/Mul.
        const std::string sig = lw.sub("Sigmoid");
        lw.node("Sigmoid", sig, {lw.in(0)}, {sig + "_output_0"});
        lw.node("Mul", lw.sub("Mul"), {lw.in(0), sig + "_output_0"}, {lw.out(0)});
        return;
      }
      case ActivationType::kRELU: lw.node("Relu", lw.name(), {lw.in(0)}, {lw.out(0)}); return;
      case ActivationType::kSIGMOID: lw.node("Sigmoid", lw.name(), {lw.in(0)}, {lw.out(0)}); return;
      case ActivationType::kTANH: lw.node("Tanh", lw.name(), {lw.in(0)}, {lw.out(0)}); return;
      case ActivationType::kHARD_SWISH: lw.node("HardSwish", lw.name(), {lw.in(0)}, {lw.out(0)}); return;
      case ActivationType::kLEAKY_RELU:
        a.set("alpha", getAlpha());
        lw.node("LeakyRelu", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
        return;
      case ActivationType::kHARD_SIGMOID:
        a.set("alpha", getAlpha());
        a.set("beta", getBeta());
        lw.node("HardSigmoid", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
        return;
      case ActivationType::kCLIP:
        // Canonical Clip: bounds as attributes (what the importer turns constant min/max inputs into).
        if (alpha_) a.set("min", *alpha_);
        if (beta_) a.set("max", *beta_);
        lw.node("Clip", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
        return;
    }
    lw.error("unknown activation type");
  }

  ActivationType type_;
  std::optional<float> alpha_, beta_;
};

// ---------------------------------------------------------------------------------------------------
class ElementWiseLayer final : public IElementWiseLayer {
 public:
  ElementWiseLayer(NetworkDefinition* net, ElementWiseOperation op) : IElementWiseLayer(net, LayerType::kELEMENTWISE), op_(op) {}
  void setOperation(ElementWiseOperation op) override { op_ = op; touch(); }
  ElementWiseOperation getOperation() const override { return op_; }

 private:
  void lower(Lowering& lw) override {
    static const char* ops[] = {"Add", "Sub", "Mul", "Div", "Pow", "Min", "Max"};
    lw.node(ops[static_cast<int>(op_)], lw.name(), {lw.in(0), lw.in(1)}, {lw.out(0)});
  }
  ElementWiseOperation op_;
};

// ---------------------------------------------------------------------------------------------------
class ConcatenationLayer final : public IConcatenationLayer {
 public:
  ConcatenationLayer(NetworkDefinition* net, int64_t axis) : IConcatenationLayer(net, LayerType::kCONCATENATION), axis_(axis) {}
  void setAxis(int64_t a) override { axis_ = a; touch(); }
  int64_t getAxis() const override { return axis_; }

 private:
  void lower(Lowering& lw) override {
    std::vector<std::string> ins;
    for (size_t i = 0; i < lw.num_inputs(); ++i) ins.push_back(lw.in(i));
    Attributes a;
    a.set("axis", axis_);
    lw.node("Concat", lw.name(), std::move(ins), {lw.out(0)}, std::move(a));
  }
  int64_t axis_;
};

// ---------------------------------------------------------------------------------------------------
class SplitLayer final : public ISplitLayer {
 public:
  SplitLayer(NetworkDefinition* net, int64_t axis, std::vector<int64_t> sizes)
      : ISplitLayer(net, LayerType::kSPLIT), axis_(axis), sizes_(std::move(sizes)) {}
  int64_t getAxis() const override { return axis_; }
  const std::vector<int64_t>& getSizes() const override { return sizes_; }

 private:
  void lower(Lowering& lw) override {
    const Shape& x = lw.in_shape(0);
    const int64_t r = static_cast<int64_t>(x.size());
    if (axis_ < -r || axis_ >= r) lw.error("axis " + std::to_string(axis_) + " out of range for rank " + std::to_string(r));
    const int64_t axis = axis_ < 0 ? axis_ + r : axis_;
    int64_t total = 0;
    for (int64_t s : sizes_) {
      if (s < 0) lw.error("negative split size");
      total += s;
    }
    if (total != x[axis])
      lw.error("split sizes " + ints_str(sizes_) + " add up to " + std::to_string(total) + ", not to dimension " +
               std::to_string(axis) + " of " + shape_str(x));
    std::vector<std::string> outs;
    for (size_t i = 0; i < sizes_.size(); ++i) outs.push_back(lw.out(i));
    Attributes a;
    a.set("axis", axis);
    a.set("split", sizes_);
    lw.node("Split", lw.name(), {lw.in(0)}, std::move(outs), std::move(a));
  }
  int64_t axis_;
  std::vector<int64_t> sizes_;
};

// ---------------------------------------------------------------------------------------------------
class SliceLayer final : public ISliceLayer {
 public:
  SliceLayer(NetworkDefinition* net, std::vector<int64_t> s, std::vector<int64_t> e, std::vector<int64_t> a,
             std::vector<int64_t> st)
      : ISliceLayer(net, LayerType::kSLICE), starts_(std::move(s)), ends_(std::move(e)), axes_(std::move(a)), steps_(std::move(st)) {}
  void setStart(const std::vector<int64_t>& v) override { starts_ = v; touch(); }
  void setEnd(const std::vector<int64_t>& v) override { ends_ = v; touch(); }
  void setAxes(const std::vector<int64_t>& v) override { axes_ = v; touch(); }
  void setSteps(const std::vector<int64_t>& v) override { steps_ = v; touch(); }

 private:
  void lower(Lowering& lw) override {
    if (starts_.empty() || starts_.size() != ends_.size() || (!axes_.empty() && axes_.size() != starts_.size()) ||
        (!steps_.empty() && steps_.size() != starts_.size()))
      lw.error("starts/ends/axes/steps must be non-empty and of equal length");
    Attributes a;
    a.set("starts", starts_);
    a.set("ends", ends_);
    if (!axes_.empty()) a.set("axes", axes_);
    if (!steps_.empty()) a.set("steps", steps_);
    lw.node("Slice", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
  }
  std::vector<int64_t> starts_, ends_, axes_, steps_;
};

// ---------------------------------------------------------------------------------------------------
class PoolingLayer final : public IPoolingLayer {
 public:
  PoolingLayer(NetworkDefinition* net, PoolingType t, Dims window, Dims stride, Dims padding)
      : IPoolingLayer(net, LayerType::kPOOLING), type_(t), window_(std::move(window)), stride_(std::move(stride)),
        pre_(padding), post_(std::move(padding)) {}
  void setStride(const Dims& s) override { stride_ = s; touch(); }
  void setPadding(const Dims& p) override { pre_ = p; post_ = p; touch(); }
  void setPrePadding(const Dims& p) override { pre_ = p; touch(); }
  void setPostPadding(const Dims& p) override { post_ = p; touch(); }
  void setCeilMode(bool c) override { ceil_ = c; touch(); }
  void setAverageCountExcludesPadding(bool e) override { exclude_pad_ = e; touch(); }
  PoolingType getPoolingType() const override { return type_; }
  Dims getWindowSize() const override { return window_; }
  Dims getStride() const override { return stride_.empty() ? window_ : stride_; }

 private:
  void lower(Lowering& lw) override {
    const Shape& x = lw.in_shape(0);
    if (x.size() < 3) lw.error("input must be N x C x spatial, got " + shape_str(x));
    const size_t r = x.size() - 2;
    const Dims stride = getStride(), pre = pre_.empty() ? filled(r, 0) : pre_, post = post_.empty() ? filled(r, 0) : post_;
    if (window_.size() != r || stride.size() != r || pre.size() != r || post.size() != r)
      lw.error("window/stride/padding must have " + std::to_string(r) + " entries (the input's spatial rank)");
    Dims pads = pre;
    pads.insert(pads.end(), post.begin(), post.end());
    Attributes a;
    a.set("ceil_mode", int64_t{ceil_});
    a.set("kernel_shape", window_);
    a.set("pads", pads);
    a.set("strides", stride);
    if (type_ == PoolingType::kMAX) {
      a.set("dilations", filled(r, 1));
      lw.node("MaxPool", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
    } else {
      a.set("count_include_pad", int64_t{!exclude_pad_});
      lw.node("AveragePool", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
    }
  }
  PoolingType type_;
  Dims window_, stride_, pre_, post_;
  bool ceil_ = false, exclude_pad_ = true;
};

// ---------------------------------------------------------------------------------------------------
class ResizeLayer final : public IResizeLayer {
 public:
  ResizeLayer(NetworkDefinition* net, ResizeMode m) : IResizeLayer(net, LayerType::kRESIZE), mode_(m) {
    // PyTorch's ONNX export: nearest -> asymmetric + floor, linear (align_corners=False) -> half_pixel.
    ctm_ = m == ResizeMode::kNEAREST ? ResizeCoordinateTransformation::kASYMMETRIC : ResizeCoordinateTransformation::kHALF_PIXEL;
  }
  void setScales(const std::vector<float>& s) override { scales_ = s; sizes_.clear(); touch(); }
  void setOutputDimensions(const Dims& d) override { sizes_ = d; scales_.clear(); touch(); }
  void setResizeMode(ResizeMode m) override { mode_ = m; touch(); }
  void setCoordinateTransformation(ResizeCoordinateTransformation t) override { ctm_ = t; touch(); }
  void setNearestRounding(ResizeRoundMode m) override { round_ = m; touch(); }
  ResizeMode getResizeMode() const override { return mode_; }

 private:
  void lower(Lowering& lw) override {
    const Shape& x = lw.in_shape(0);
    if (x.size() < 3) lw.error("input must be N x C x spatial, got " + shape_str(x));
    Shape out = x;
    Attributes a;
    if (!scales_.empty()) {
      std::vector<float> s = scales_;
      if (s.size() == x.size() - 2) s.insert(s.begin(), {1.f, 1.f});
      if (s.size() != x.size()) lw.error("expected " + std::to_string(x.size()) + " (or spatial-only) scales");
      for (size_t i = 0; i < x.size(); ++i) {
        if (!(s[i] > 0)) lw.error("scales must be positive");
        out[i] = static_cast<int64_t>(std::floor(x[i] * static_cast<double>(s[i])));  // ONNX rule
      }
      a.set("kestrel_scales", s);
    } else if (!sizes_.empty()) {
      out = sizes_;
      if (out.size() == x.size() - 2) out.insert(out.begin(), {x[0], x[1]});
      if (out.size() != x.size()) lw.error("expected " + std::to_string(x.size()) + " (or spatial-only) output sizes");
    } else {
      lw.error("neither scales nor output dimensions are set");
    }
    for (int64_t d : out)
      if (d <= 0) lw.error("output shape " + shape_str(out) + " has an empty dimension");
    static const char* ctm[] = {"asymmetric", "half_pixel", "pytorch_half_pixel", "align_corners"};
    static const char* rnd[] = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
    a.set("mode", std::string(mode_ == ResizeMode::kNEAREST ? "nearest" : "linear"));
    a.set("coordinate_transformation_mode", std::string(ctm[static_cast<int>(ctm_)]));
    if (mode_ == ResizeMode::kNEAREST) a.set("nearest_mode", std::string(rnd[static_cast<int>(round_)]));
    a.set("kestrel_sizes", out);
    lw.node("Resize", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
  }
  ResizeMode mode_;
  ResizeCoordinateTransformation ctm_;
  ResizeRoundMode round_ = ResizeRoundMode::kFLOOR;
  std::vector<float> scales_;
  Dims sizes_;
};

// ---------------------------------------------------------------------------------------------------
class SoftMaxLayer final : public ISoftMaxLayer {
 public:
  SoftMaxLayer(NetworkDefinition* net, int64_t axis) : ISoftMaxLayer(net, LayerType::kSOFTMAX), axis_(axis) {}
  void setAxis(int64_t a) override { axis_ = a; touch(); }
  int64_t getAxis() const override { return axis_; }

 private:
  void lower(Lowering& lw) override {
    const int64_t r = static_cast<int64_t>(lw.in_shape(0).size());
    if (axis_ < -r || axis_ >= r) lw.error("axis " + std::to_string(axis_) + " out of range for rank " + std::to_string(r));
    Attributes a;
    a.set("axis", axis_);
    lw.node("Softmax", lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
  }
  int64_t axis_;
};

// ---------------------------------------------------------------------------------------------------
class MatrixMultiplyLayer final : public IMatrixMultiplyLayer {
 public:
  MatrixMultiplyLayer(NetworkDefinition* net, MatrixOperation a, MatrixOperation b)
      : IMatrixMultiplyLayer(net, LayerType::kMATRIX_MULTIPLY), ops_{a, b} {}
  void setOperation(int i, MatrixOperation op) override { ops_.at(static_cast<size_t>(i)) = op; touch(); }
  MatrixOperation getOperation(int i) const override { return ops_.at(static_cast<size_t>(i)); }

 private:
  void lower(Lowering& lw) override {
    std::string ins[2];
    for (size_t i = 0; i < 2; ++i) {
      ins[i] = lw.in(i);
      if (ops_[i] != MatrixOperation::kTRANSPOSE) continue;
      const size_t r = lw.in_shape(i).size();
      if (r < 2) lw.error(std::string("cannot transpose the rank-") + std::to_string(r) + " operand " + (i ? "B" : "A"));
      std::vector<int64_t> perm(r);
      for (size_t k = 0; k < r; ++k) perm[k] = static_cast<int64_t>(k);
      std::swap(perm[r - 1], perm[r - 2]);
      Attributes a;
      a.set("perm", perm);
      const std::string tn = lw.sub(i ? "TransposeB" : "TransposeA");
      lw.node("Transpose", tn, {ins[i]}, {tn + "_output_0"}, std::move(a));
      ins[i] = tn + "_output_0";
    }
    lw.node("MatMul", lw.name(), {ins[0], ins[1]}, {lw.out(0)});
  }
  std::array<MatrixOperation, 2> ops_;
};

// ---------------------------------------------------------------------------------------------------
class ShuffleLayer final : public IShuffleLayer {
 public:
  explicit ShuffleLayer(NetworkDefinition* net) : IShuffleLayer(net, LayerType::kSHUFFLE) {}
  void setFirstTranspose(const std::vector<int64_t>& p) override { first_ = p; touch(); }
  void setReshapeDimensions(const Dims& d) override { reshape_ = d; has_reshape_ = true; touch(); }
  void setSecondTranspose(const std::vector<int64_t>& p) override { second_ = p; touch(); }

 private:
  void lower(Lowering& lw) override {
    // Up to three nodes; the last one carries the layer's name and writes its output.
    const int steps = int{!first_.empty()} + int{has_reshape_} + int{!second_.empty()};
    int done = 0;
    std::string cur = lw.in(0);
    auto emit = [&](const std::string& op, const std::string& part, Attributes a) {
      ++done;
      const bool last = done == steps;
      const std::string nn = last ? lw.name() : lw.sub(part);
      const std::string out = last ? lw.out(0) : nn + "_output_0";
      lw.node(op, nn, {cur}, {out}, std::move(a));
      cur = out;
    };
    if (steps == 0) {
      lw.node("Identity", lw.name(), {cur}, {lw.out(0)});
      return;
    }
    if (!first_.empty()) {
      Attributes a;
      a.set("perm", first_);
      emit("Transpose", "Transpose", std::move(a));
    }
    if (has_reshape_) {
      // Resolve 0 (copy) and -1 (infer) here: the canonical Reshape carries a fully resolved target.
      const Shape& x = lw.shape(cur);
      Dims t = reshape_;
      int64_t known = 1, infer_at = -1;
      for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == 0) {
          if (i >= x.size()) lw.error("reshape dimension " + std::to_string(i) + " is 0 but the input has rank " + std::to_string(x.size()));
          t[i] = x[i];
        }
        if (t[i] == -1) {
          if (infer_at >= 0) lw.error("more than one -1 in the reshape dimensions " + shape_str(reshape_));
          infer_at = static_cast<int64_t>(i);
        } else if (t[i] < 0) {
          lw.error("invalid reshape dimensions " + shape_str(reshape_));
        } else {
          known *= t[i];
        }
      }
      const int64_t n = shape_numel(x);
      if (infer_at >= 0) {
        if (known == 0 || n % known) lw.error("cannot reshape " + shape_str(x) + " to " + shape_str(reshape_));
        t[infer_at] = n / known;
      }
      if (shape_numel(t) != n) lw.error("cannot reshape " + shape_str(x) + " to " + shape_str(reshape_));
      Attributes a;
      a.set("shape", t);
      emit("Reshape", "Reshape", std::move(a));
    }
    if (!second_.empty()) {
      Attributes a;
      a.set("perm", second_);
      emit("Transpose", "Transpose_1", std::move(a));
    }
  }
  std::vector<int64_t> first_, second_;
  Dims reshape_;
  bool has_reshape_ = false;
};

// ---------------------------------------------------------------------------------------------------
class ConstantLayer final : public IConstantLayer {
 public:
  ConstantLayer(NetworkDefinition* net, HostTensor w) : IConstantLayer(net, LayerType::kCONSTANT), w_(std::move(w)) {}
  const HostTensor& getWeights() const override { return w_; }

 private:
  // No node: the output tensor is an initializer, as in an ONNX graph.
  void lower(Lowering& lw) override { lw.constant(lw.out(0), w_); }
  HostTensor w_;
};

// ---------------------------------------------------------------------------------------------------
class UnaryLayer final : public IUnaryLayer {
 public:
  UnaryLayer(NetworkDefinition* net, UnaryOperation op) : IUnaryLayer(net, LayerType::kUNARY), op_(op) {}
  void setOperation(UnaryOperation op) override { op_ = op; touch(); }
  UnaryOperation getOperation() const override { return op_; }

 private:
  void lower(Lowering& lw) override {
    static const char* ops[] = {"Exp", "Log", "Sqrt", "Reciprocal", "Abs", "Neg", "Floor", "Ceil", "Round", "Erf"};
    lw.node(ops[static_cast<int>(op_)], lw.name(), {lw.in(0)}, {lw.out(0)});
  }
  UnaryOperation op_;
};

// ---------------------------------------------------------------------------------------------------
class ReduceLayer final : public IReduceLayer {
 public:
  ReduceLayer(NetworkDefinition* net, ReduceOperation op, std::vector<int64_t> axes, bool keep)
      : IReduceLayer(net, LayerType::kREDUCE), op_(op), axes_(std::move(axes)), keep_(keep) {}
  void setOperation(ReduceOperation op) override { op_ = op; touch(); }
  void setReduceAxes(const std::vector<int64_t>& a) override { axes_ = a; touch(); }
  void setKeepDimensions(bool k) override { keep_ = k; touch(); }

 private:
  void lower(Lowering& lw) override {
    static const char* ops[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"};
    // Empty axes would mean "all" in ONNX; require them, so a forgotten argument is not a silent global reduce.
    if (axes_.empty()) lw.error("no reduce axes given");
    Attributes a;
    a.set("axes", axes_);
    a.set("keepdims", int64_t{keep_});
    lw.node(ops[static_cast<int>(op_)], lw.name(), {lw.in(0)}, {lw.out(0)}, std::move(a));
  }
  ReduceOperation op_;
  std::vector<int64_t> axes_;
  bool keep_;
};

void ActivationLayer::refresh_names() {
  // SiLU and the single-node activations name their output node differently.
  refreshOutputNames();
  touch();
}

std::string py_repr(const std::string& s) {
  // Python's str repr: single quotes unless the text has a single quote and no double quote.
  const char q = s.find('\'') != std::string::npos && s.find('"') == std::string::npos ? '"' : '\'';
  std::string out(1, q);
  for (char c : s) {
    if (c == '\\' || c == q) out += '\\', out += c;
    else if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else out += c;
  }
  return out + q;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------
void ITensor::setName(const std::string& name) {
  auto& impl = *net_->impl_;
  KESTREL_CHECK(!name.empty(), "tensor '", name_, "': empty name");
  if (name == name_) {
    user_named_ = true;
    return;
  }
  KESTREL_CHECK(!impl.tensor_by_name.count(name), "tensor name '", name, "' is already used in network '", impl.name, "'");
  impl.rename_tensor_entry(this, name);
  user_named_ = true;
}

Dims ITensor::getDimensions() const {
  auto& impl = *net_->impl_;
  impl.sync();
  return impl.g.value(name_).shape;
}

DType ITensor::getType() const {
  auto& impl = *net_->impl_;
  impl.sync();
  return impl.g.value(name_).dtype;
}

bool ITensor::isNetworkOutput() const {
  auto& outs = net_->impl_->outputs;
  return std::find(outs.begin(), outs.end(), this) != outs.end();
}

void ILayer::setName(const std::string& name) {
  auto& impl = *net_->impl_;
  if (name == name_) return;
  KESTREL_CHECK(!name.empty(), layer_type_name(type_), " layer '", name_, "': empty name");
  KESTREL_CHECK(!impl.layer_by_name.count(name), "layer name '", name, "' is already used in network '", impl.name, "'");
  impl.layer_by_name.erase(name_);
  name_ = name;
  impl.layer_by_name[name_] = this;
  impl.refresh_output_names(*this);
  touch();
}

void ILayer::touch() { net_->impl_->mark_dirty(index_); }
void ILayer::refreshOutputNames() { net_->impl_->refresh_output_names(*this); }

// ---------------------------------------------------------------------------------------------------
NetworkDefinition::NetworkDefinition(std::string name)
    : impl_(std::make_unique<detail::NetworkImpl>(this, std::move(name))) {}
NetworkDefinition::~NetworkDefinition() = default;

void NetworkDefinition::setName(const std::string& name) { impl_->name = name; }
const std::string& NetworkDefinition::getName() const { return impl_->name; }

ITensor* NetworkDefinition::addInput(const std::string& name, DType type, const Dims& dims) {
  auto& impl = *impl_;
  KESTREL_CHECK(!name.empty(), "network '", impl.name, "': an input needs a name");
  KESTREL_CHECK(!impl.tensor_by_name.count(name) && !impl.g.has_value(name), "network '", impl.name, "': input name '",
                name, "' is already used");
  for (int64_t d : dims)
    KESTREL_CHECK(d > 0, "network '", impl.name, "': input '", name, "' has a non-positive dimension in ", shape_str(dims));
  Value v;
  v.name = name;
  v.dtype = type;
  v.shape = dims;
  v.shape_known = true;
  impl.g.add_value(std::move(v));
  impl.tensors.push_back(std::unique_ptr<ITensor>(new ITensor(this, name, nullptr, 0)));
  ITensor* t = impl.tensors.back().get();
  t->user_named_ = true;
  impl.tensor_by_name[name] = t;
  impl.inputs.push_back(t);
  return t;
}

void NetworkDefinition::markOutput(ITensor& t) {
  impl_->check_owned(&t, "markOutput");
  if (!t.isNetworkOutput()) impl_->outputs.push_back(&t);
}

void NetworkDefinition::unmarkOutput(ITensor& t) {
  auto& outs = impl_->outputs;
  outs.erase(std::remove(outs.begin(), outs.end(), &t), outs.end());
}

IConvolutionLayer* NetworkDefinition::addConvolution(ITensor& input, int64_t nbOutputMaps, const Dims& kernelSize,
                                                     HostTensor kernelWeights, HostTensor biasWeights) {
  return impl_->add(std::make_unique<ConvolutionLayer>(this, nbOutputMaps, kernelSize, std::move(kernelWeights),
                                                       std::move(biasWeights)),
                    {&input}, 1);
}

IActivationLayer* NetworkDefinition::addActivation(ITensor& input, ActivationType type, std::optional<float> alpha,
                                                   std::optional<float> beta) {
  return impl_->add(std::make_unique<ActivationLayer>(this, type, alpha, beta), {&input}, 1);
}

IElementWiseLayer* NetworkDefinition::addElementwise(ITensor& a, ITensor& b, ElementWiseOperation op) {
  return impl_->add(std::make_unique<ElementWiseLayer>(this, op), {&a, &b}, 1);
}

IConcatenationLayer* NetworkDefinition::addConcat(const std::vector<ITensor*>& inputs, int64_t axis) {
  KESTREL_CHECK(!inputs.empty(), "network '", impl_->name, "': addConcat needs at least one input");
  return impl_->add(std::make_unique<ConcatenationLayer>(this, axis), inputs, 1);
}

ISplitLayer* NetworkDefinition::addSplit(ITensor& input, int64_t axis, const std::vector<int64_t>& sizes) {
  KESTREL_CHECK(!sizes.empty(), "network '", impl_->name, "': addSplit needs at least one size");
  return impl_->add(std::make_unique<SplitLayer>(this, axis, sizes), {&input}, sizes.size());
}

ISliceLayer* NetworkDefinition::addSlice(ITensor& input, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                                         const std::vector<int64_t>& axes, const std::vector<int64_t>& steps) {
  return impl_->add(std::make_unique<SliceLayer>(this, starts, ends, axes, steps), {&input}, 1);
}

IPoolingLayer* NetworkDefinition::addPooling(ITensor& input, PoolingType type, const Dims& window, const Dims& stride,
                                             const Dims& padding) {
  return impl_->add(std::make_unique<PoolingLayer>(this, type, window, stride, padding), {&input}, 1);
}

IResizeLayer* NetworkDefinition::addResize(ITensor& input, const std::vector<float>& scales, ResizeMode mode) {
  auto layer = std::make_unique<ResizeLayer>(this, mode);
  layer->setScales(scales);  // before add(): nothing to mark dirty yet
  return impl_->add(std::move(layer), {&input}, 1);
}

IResizeLayer* NetworkDefinition::addResizeToSize(ITensor& input, const Dims& sizes, ResizeMode mode) {
  auto layer = std::make_unique<ResizeLayer>(this, mode);
  layer->setOutputDimensions(sizes);
  return impl_->add(std::move(layer), {&input}, 1);
}

ISoftMaxLayer* NetworkDefinition::addSoftmax(ITensor& input, int64_t axis) {
  return impl_->add(std::make_unique<SoftMaxLayer>(this, axis), {&input}, 1);
}

IMatrixMultiplyLayer* NetworkDefinition::addMatMul(ITensor& a, MatrixOperation opA, ITensor& b, MatrixOperation opB) {
  return impl_->add(std::make_unique<MatrixMultiplyLayer>(this, opA, opB), {&a, &b}, 1);
}

IMatrixMultiplyLayer* NetworkDefinition::addMatMul(ITensor& a, bool transA, ITensor& b, bool transB) {
  return addMatMul(a, transA ? MatrixOperation::kTRANSPOSE : MatrixOperation::kNONE, b,
                   transB ? MatrixOperation::kTRANSPOSE : MatrixOperation::kNONE);
}

IShuffleLayer* NetworkDefinition::addShuffle(ITensor& input) {
  return impl_->add(std::make_unique<ShuffleLayer>(this), {&input}, 1);
}

IShuffleLayer* NetworkDefinition::addReshape(ITensor& input, const Dims& dims) {
  auto layer = std::make_unique<ShuffleLayer>(this);
  layer->setReshapeDimensions(dims);
  return impl_->add(std::move(layer), {&input}, 1);
}

IShuffleLayer* NetworkDefinition::addTranspose(ITensor& input, const std::vector<int64_t>& perm) {
  auto layer = std::make_unique<ShuffleLayer>(this);
  layer->setFirstTranspose(perm);
  return impl_->add(std::move(layer), {&input}, 1);
}

IConstantLayer* NetworkDefinition::addConstant(const Dims& dims, HostTensor weights) {
  KESTREL_CHECK(!weights.empty(), "network '", impl_->name, "': addConstant without weights");
  KESTREL_CHECK(weights.numel() == shape_numel(dims), "network '", impl_->name, "': addConstant of shape ",
                shape_str(dims), " given ", weights.numel(), " values");
  return impl_->add(std::make_unique<ConstantLayer>(this, weights.shape() == dims ? weights : weights.reshaped(dims)), {}, 1);
}

IUnaryLayer* NetworkDefinition::addUnary(ITensor& input, UnaryOperation op) {
  return impl_->add(std::make_unique<UnaryLayer>(this, op), {&input}, 1);
}

IReduceLayer* NetworkDefinition::addReduce(ITensor& input, ReduceOperation op, const std::vector<int64_t>& axes, bool keepDims) {
  return impl_->add(std::make_unique<ReduceLayer>(this, op, axes, keepDims), {&input}, 1);
}

int NetworkDefinition::getNbLayers() const { return static_cast<int>(impl_->layers.size()); }
ILayer* NetworkDefinition::getLayer(int i) const { return impl_->layers.at(static_cast<size_t>(i)).get(); }
int NetworkDefinition::getNbInputs() const { return static_cast<int>(impl_->inputs.size()); }
ITensor* NetworkDefinition::getInput(int i) const { return impl_->inputs.at(static_cast<size_t>(i)); }
int NetworkDefinition::getNbOutputs() const { return static_cast<int>(impl_->outputs.size()); }
ITensor* NetworkDefinition::getOutput(int i) const { return impl_->outputs.at(static_cast<size_t>(i)); }

void NetworkDefinition::setMetadata(const std::string& key, const std::string& value) { impl_->metadata[key] = value; }
const std::map<std::string, std::string>& NetworkDefinition::getMetadata() const { return impl_->metadata; }

std::string format_names_metadata(const std::vector<std::string>& names) {
  std::string s = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(i) + ": " + py_repr(names[i]);
  }
  return s + "}";
}

void NetworkDefinition::setClassNames(const std::vector<std::string>& names) {
  impl_->metadata["names"] = format_names_metadata(names);
}
void NetworkDefinition::setStride(int64_t stride) { impl_->metadata["stride"] = std::to_string(stride); }
void NetworkDefinition::setImgsz(int64_t h, int64_t w) {
  impl_->metadata["imgsz"] = "[" + std::to_string(h) + ", " + std::to_string(w) + "]";
}

Graph NetworkDefinition::graph() { return impl_->assemble(); }

Graph NetworkDefinition::takeGraph() {
  Graph g = impl_->assemble();
  impl_ = std::make_unique<detail::NetworkImpl>(this, impl_->name);
  return g;
}

}  // namespace kestrel
