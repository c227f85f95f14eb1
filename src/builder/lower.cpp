// Graph -> BuildPlan. Layout policy: ops that compute in channels-last (convolutions, pooling,
// resize, SPPF) produce NHWC tensors; elementwise ops, Concat, Split and Slice follow their input's
// layout; everything else (reshapes, transposes, softmax, matmul, heads) produces row-major tensors.
// A layer that needs another layout than its input has gets a kestrel.Convert layer in between (one
// per value and layout, shared by all readers). Precision policy: in FP16 engines the NHWC float
// tensors are FP16 (the trunk, where the bytes are); row-major ones stay FP32 (the heads, where
// box coordinates up to 640 px and softmax sums want the bits). Kernels accumulate in FP32.
// INT8 engines lower a Q/DQ graph (quant::quantize_graph or a Q/DQ ONNX): every kestrel.Conv whose input
// comes through DequantizeLinear becomes kestrel.ConvInt8 with its int8 OHWI weights and the
// per-channel s_x * s_w, reading its input as int8 codes. Values int8_domain.cpp selects are int8
// throughout: their producers (INT8 convs with out_scale, data movement on codes) write codes and their
// readers read them, residuals included (attribute r_scale). Any other value an INT8 conv reads gets a
// kestrel.QuantizeInt8 layer (one per value and scale); every INT8 conv reads int8, 1x1 ones too: with
// cuDNN's fused INT8 plans a quantize pass plus the int8 conv beat a conv quantizing its fp16 input as
// it loads it (yolov8n batch 32 on an H200: 2.31 vs 2.53 ms, bench/RESULTS.md). requantize.cpp then
// lets an INT8 conv write the codes itself where nothing else reads its output. The Q/DQ nodes are not
// layers; all other layers run as in an FP16 engine.
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>

#include "backend/cuda/int8_kernels.h"
#include "builder/build_plan.h"

namespace kestrel::bld {

namespace {

bool is_conv(const std::string& op) { return op == "Conv" || op == "kestrel.Conv"; }

// A convolution with fewer than 8 input channels and no residual (the network's first) runs as
// kestrel.ConvStem: its kernel reads the float32 input in the model's own layout, so no conversion
// layer (a full extra pass over the largest input) precedes it.
bool is_stem(const Graph& g, const Node& n) {
  if (!is_conv(n.op) || n.inputs.size() < 2 || (n.inputs.size() > 3 && !n.inputs[3].empty())) return false;
  const Value& x = g.value(n.inputs[0]);
  const Value& w = g.value(n.inputs[1]);
  return x.shape.size() == 4 && x.dtype == DType::F32 && x.shape[1] < 8 && n.attrs.i("group", 1) == 1 && w.is_constant();
}

bool follows_layout(const std::string& op) {
  static const std::set<std::string> ops = {
      "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Erf", "Exp", "Log", "Sqrt", "Reciprocal",
      "Floor", "Ceil", "Round", "Neg", "Abs", "Not", "Clip", "Cast", "Add", "Sub", "Mul", "Div", "Pow", "Equal",
      "Less", "Greater", "Min", "Max", "Sum", "Where", "Concat", "Split", "Slice"};
  return ops.count(op) != 0;
}

// OIHW -> OHWI, any element type (the layout the conv kernels and cuDNN's NHWC filters read).
HostTensor oihw_to_ohwi(const HostTensor& w) {
  KESTREL_CHECK(w.rank() == 4, "only 2-D convolution weights are supported on the GPU, got ", shape_str(w.shape()));
  const int64_t O = w.dim(0), I = w.dim(1), KH = w.dim(2), KW = w.dim(3);
  const size_t es = dtype_size(w.dtype());
  HostTensor r(w.dtype(), {O, KH, KW, I});
  const auto* s = static_cast<const uint8_t*>(w.raw());
  auto* d = static_cast<uint8_t*>(r.raw());
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t y = 0; y < KH; ++y)
        for (int64_t x = 0; x < KW; ++x)
          std::memcpy(d + static_cast<size_t>(((o * KH + y) * KW + x) * I + i) * es,
                      s + static_cast<size_t>(((o * I + i) * KH + y) * KW + x) * es, es);
  return r;
}

// Float weights in the engine's precision.
HostTensor conv_weight_ohwi(const HostTensor& w, DType dt) {
  const HostTensor r = oihw_to_ohwi(w.dtype() == DType::F32 ? w : w.cast(DType::F32));
  return dt == DType::F32 ? r : r.cast(dt);
}

// int8 codes as they are (the INT8 kernels' weights).
HostTensor int8_weight_ohwi(const HostTensor& w) {
  KESTREL_CHECK(w.dtype() == DType::I8, "internal: int8 conv weights must be int8, got ", dtype_name(w.dtype()));
  return oihw_to_ohwi(w);
}

bool is_qdq(const std::string& op) { return op == "QuantizeLinear" || op == "DequantizeLinear"; }

float scalar_of(const Value& v) {
  KESTREL_CHECK(v.is_constant() && v.constant->numel() == 1, "internal: '", v.name, "' must be a constant scalar");
  return v.constant->to_f32().at(0);
}

class Lowering {
 public:
  Lowering(const Graph& g, const BuilderConfig& cfg)
      : g_(g), fp16_(cfg.precision != Precision::FP32), int8_(cfg.precision == Precision::INT8) {
    p_.precision = cfg.precision;
    p_.tf32 = cfg.tf32;
    prod_ = g.producers();
    bool has_qdq = false;
    for (const Node& n : g.nodes) has_qdq |= is_qdq(n.op);
    KESTREL_CHECK(!has_qdq || int8_, "the model is quantized (QuantizeLinear / DequantizeLinear nodes): build it with --int8");
    KESTREL_CHECK(!int8_ || has_qdq,
                  "an INT8 engine needs a quantized model: calibrate it (--calib DIR) or give a Q/DQ ONNX");
    if (int8_) codes_ = int8_values(g);
  }

  BuildPlan run() {
    for (size_t i = 0; i < g_.inputs.size(); ++i) {
      const Value& v = g_.value(g_.inputs[i]);
      BTensor t;
      t.name = v.name;
      t.dtype = v.dtype;
      t.shape = v.shape;
      t.storage = rt::Storage::Input;
      t.slot = static_cast<int32_t>(i);
      const int id = p_.add_tensor(std::move(t));
      cur_[v.name] = id;
      p_.inputs.push_back(id);
    }
    for (const Node& n : g_.nodes) lower_node(n);
    for (size_t i = 0; i < g_.outputs.size(); ++i) bind_output(g_.outputs[i], static_cast<int32_t>(i));
    return std::move(p_);
  }

 private:
  DType act_dtype(DType d, bool channels_last) const {
    return fp16_ && channels_last && d == DType::F32 ? DType::F16 : d;
  }

  int weight(const std::string& key, const std::string& name, HostTensor data) {
    auto it = weights_.find(key);
    if (it != weights_.end()) return it->second;
    BTensor t;
    t.name = name;
    t.dtype = data.dtype();
    t.shape = data.shape();
    t.storage = rt::Storage::Weights;
    t.data = std::move(data);
    const int id = p_.add_tensor(std::move(t));
    weights_[key] = id;
    return id;
  }

  int constant(const Value& v) { return weight(v.name + "|raw", v.name, *v.constant); }

  int add_layer(BLayer l) {
    p_.layers.push_back(std::move(l));
    return static_cast<int>(p_.layers.size()) - 1;
  }

  // The value in the requested layout, converting once per value and layout.
  int converted(const std::string& vname, int src, bool to_cl) {
    auto& cache = to_cl ? as_cl_ : as_rm_;
    if (auto it = cache.find(vname); it != cache.end()) return it->second;
    const BTensor& s = p_.tensors[src];
    KESTREL_CHECK(!to_cl || s.shape.size() == 4, "tensor '", vname, "' of shape ", shape_str(s.shape),
                  " would need a channels-last form; only 4-D tensors have one");
    BTensor t;
    t.name = vname + (to_cl ? "#nhwc" : "#nchw");
    t.dtype = act_dtype(g_.value(vname).dtype, to_cl);
    t.shape = s.shape;
    t.channels_last = to_cl;
    const int id = p_.add_tensor(std::move(t));
    BLayer l;
    l.name = "convert:" + vname;
    l.op = "kestrel.Convert";
    l.in = {src};
    l.out = {id};
    add_layer(std::move(l));
    cache[vname] = id;
    return id;
  }

  int input_for(const std::string& vname, cuda::Access access) {
    const Value& v = g_.value(vname);
    if (v.is_constant()) return constant(v);
    auto it = cur_.find(vname);
    KESTREL_CHECK(it != cur_.end(), "internal: '", vname, "' is read before it is computed");
    const int id = it->second;
    const BTensor& t = p_.tensors[id];
    if (access == cuda::Access::ChannelsLast && !t.channels_last) return converted(vname, id, true);
    if (access == cuda::Access::Dense && t.channels_last) return converted(vname, id, false);
    return id;
  }

  int new_output(const std::string& name, bool channels_last) {
    const Value& v = g_.value(name);
    KESTREL_CHECK(v.shape_known, "internal: '", name, "' has no inferred shape");
    BTensor t;
    t.name = name;
    t.shape = v.shape;
    t.channels_last = channels_last && v.shape.size() == 4;
    t.dtype = act_dtype(v.dtype, t.channels_last);
    if (codes_.count(name)) {
      KESTREL_CHECK(t.channels_last, "internal: int8 value '", name, "' is not channels-last");
      t.dtype = DType::I8;
    }
    const int id = p_.add_tensor(std::move(t));
    cur_[name] = id;
    return id;
  }

  void lower_batch_norm(const Node& n) {
    const Value& x = g_.value(n.inputs[0]);
    for (size_t i = 1; i < 5; ++i)
      KESTREL_CHECK(g_.value(n.inputs[i]).is_constant(), "BatchNormalization node '", n.name, "': parameters must be constant");
    const auto scale = g_.value(n.inputs[1]).constant->to_f32(), bias = g_.value(n.inputs[2]).constant->to_f32(),
               mean = g_.value(n.inputs[3]).constant->to_f32(), var = g_.value(n.inputs[4]).constant->to_f32();
    const float eps = n.attrs.f("epsilon", 1e-5f);
    const int64_t C = x.shape.at(1);
    Shape s = {C};
    for (size_t i = 2; i < x.shape.size(); ++i) s.push_back(1);
    std::vector<float> a(C), b(C);
    for (int64_t c = 0; c < C; ++c) {  // the CPU reference's formula, in float
      a[c] = scale[c] / std::sqrt(var[c] + eps);
      b[c] = bias[c] - mean[c] * a[c];
    }
    const int ia = weight(n.name + "|bn_a", n.name + ".scale", HostTensor::from_f32(s, a));
    const int ib = weight(n.name + "|bn_b", n.name + ".shift", HostTensor::from_f32(s, b));
    const int xi = input_for(n.inputs[0], cuda::Access::Any);
    const bool cl = p_.tensors[xi].channels_last;
    BTensor tmp;
    tmp.name = n.outputs[0] + "#bn_scaled";
    tmp.shape = x.shape;
    tmp.channels_last = cl;
    tmp.dtype = act_dtype(x.dtype, cl);
    const int ti = p_.add_tensor(std::move(tmp));
    BLayer scale_l;
    scale_l.name = n.name + "/scale";
    scale_l.op = "Mul";
    scale_l.in = {xi, ia};
    scale_l.out = {ti};
    scale_l.fused = {"BatchNormalization"};
    add_layer(std::move(scale_l));
    const int yi = new_output(n.outputs[0], cl);
    BLayer shift_l;
    shift_l.name = n.name + "/shift";
    shift_l.op = "Add";
    shift_l.in = {ti, ib};
    shift_l.out = {yi};
    shift_l.fused = {"BatchNormalization"};
    add_layer(std::move(shift_l));
  }

  void lower_node(const Node& n) {
    bool all_const = !n.outputs.empty();
    for (auto& o : n.outputs)
      if (!o.empty() && !g_.value(o).is_constant()) all_const = false;
    if (all_const) return;  // folded; consumers read the constants
    if (is_qdq(n.op)) return;  // folded into the INT8 convs that read them (check_qdq_placement)
    if (int8_) {
      const std::string prec = n.attrs.s("kestrel_precision", "fp16");
      KESTREL_CHECK(prec != "fp32", "node '", n.name, "' is marked fp32: INT8 engines run the layers outside INT8 in FP16 "
                                    "(use --layer-precision PATTERN:fp16)");
      if (n.op == "kestrel.Conv" && !n.inputs.empty()) {
        auto it = prod_.find(n.inputs[0]);
        if (it != prod_.end() && g_.nodes[it->second].op == "DequantizeLinear") {
          lower_int8_conv(n, g_.nodes[it->second]);
          return;
        }
      }
      KESTREL_CHECK(prec != "int8", "node '", n.name, "' (", n.op, ") is marked int8 but reads no DequantizeLinear");
    }
    if (n.op == "BatchNormalization") {
      lower_batch_norm(n);
      return;
    }
    // (Only when the input tensor really is float32: after an FP16 layer it is an ordinary conv.)
    const bool stem = is_stem(g_, n) && (g_.value(n.inputs[0]).is_constant() || p_.tensors[cur_.at(n.inputs[0])].dtype == DType::F32);
    const cuda::OpTraits tr = cuda::op_traits(stem ? "kestrel.ConvStem" : n.op);
    if (!tr.supported) fail("the CUDA backend has no kernel for '", n.op, "' (node '", n.name, "')");
    BLayer l;
    l.name = n.name;
    l.op = stem ? "kestrel.ConvStem" : n.op;
    if (stem && n.op == "Conv") l.fused = {"Conv:" + n.name};
    l.attrs = n.attrs;
    if (auto it = n.attrs.all().find("kestrel_fused"); it != n.attrs.all().end())
      if (auto* v = std::get_if<std::vector<std::string>>(&it->second)) l.fused = *v;
    bool any_cl_input = false;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      const std::string& in = n.inputs[i];
      if (in.empty()) {
        l.in.push_back(-1);
        continue;
      }
      const Value& v = g_.value(in);
      if (is_conv(n.op) && i == 1) {
        KESTREL_CHECK(v.is_constant(), n.op, " node '", n.name, "': weights must be constant on the GPU");
        const DType wdt = stem ? DType::F32 : act_dtype(DType::F32, true);
        l.in.push_back(weight(in + (stem ? "|ohwi32" : "|ohwi"), in, conv_weight_ohwi(*v.constant, wdt)));
      } else if ((is_conv(n.op) || n.op == "ConvTranspose") && i == 2) {
        KESTREL_CHECK(v.is_constant(), n.op, " node '", n.name, "': bias must be constant on the GPU");
        l.in.push_back(weight(in + "|f32", in, v.constant->dtype() == DType::F32 ? *v.constant : v.constant->cast(DType::F32)));
      } else if (n.op == "ConvTranspose" && i == 1) {
        KESTREL_CHECK(v.is_constant(), n.op, " node '", n.name, "': weights must be constant on the GPU");
        l.in.push_back(weight(in + "|f32", in, v.constant->dtype() == DType::F32 ? *v.constant : v.constant->cast(DType::F32)));
      } else {
        const int id = input_for(in, tr.input(i));
        if (!v.is_constant() && p_.tensors[id].channels_last) any_cl_input = true;
        l.in.push_back(id);
      }
    }
    const bool cl_out = tr.nhwc || (follows_layout(n.op) && any_cl_input);
    for (auto& o : n.outputs) l.out.push_back(o.empty() ? -1 : new_output(o, cl_out));
    // Optional outputs nobody reads (none of the supported ops has one) are not materialized.
    for (int id : l.out) KESTREL_CHECK(id >= 0, n.op, " node '", n.name, "': omitted outputs are not supported on the GPU");
    add_layer(std::move(l));
  }

  // The int8 form of a value for a given scale, made once by a kestrel.QuantizeInt8 layer.
  int quantized(const std::string& vname, float scale) {
    if (auto c = codes_.find(vname); c != codes_.end()) {
      KESTREL_CHECK(c->second == scale, "internal: '", vname, "' is stored with scale ", c->second, ", read with ", scale);
      return cur_.at(vname);
    }
    uint32_t bits = 0;
    std::memcpy(&bits, &scale, 4);
    const std::string key = vname + "|" + std::to_string(bits);
    if (auto it = as_int8_.find(key); it != as_int8_.end()) return it->second;
    const int src = input_for(vname, cuda::Access::Any);
    const BTensor& s = p_.tensors[src];
    KESTREL_CHECK(s.shape.size() == 4, "INT8 convolution input '", vname, "' must be 4-D, got ", shape_str(s.shape));
    BTensor t;
    t.name = vname + "#int8";
    if (as_int8_count_[vname]++) t.name += std::to_string(as_int8_count_[vname]);
    t.dtype = DType::I8;
    t.shape = s.shape;
    t.channels_last = true;
    const int id = p_.add_tensor(std::move(t));
    BLayer l;
    l.name = "quantize:" + vname;
    l.op = "kestrel.QuantizeInt8";
    l.in = {src};
    l.out = {id};
    l.attrs.set("scale", scale);
    l.fused = {"QuantizeLinear"};
    add_layer(std::move(l));
    as_int8_[key] = id;
    return id;
  }

  // kestrel.Conv reading x through Q/DQ -> kestrel.ConvInt8 (inputs X int8, W int8 OHWI, Scale, B, R).
  void lower_int8_conv(const Node& n, const Node& xdq) {
    auto wp = prod_.find(n.inputs.at(1));
    KESTREL_CHECK(wp != prod_.end() && g_.nodes[wp->second].op == "DequantizeLinear", "INT8 conv '", n.name,
                  "': its weights must come through DequantizeLinear");
    const Node& wdq = g_.nodes[wp->second];
    const Value& wq = g_.value(wdq.inputs.at(0));
    KESTREL_CHECK(wq.is_constant() && wq.constant->dtype() == DType::I8, "INT8 conv '", n.name, "': weights must be constant int8");
    const std::string outp = n.attrs.s("kestrel_output_precision", "fp16");
    KESTREL_CHECK(outp == "fp16", "INT8 conv '", n.name, "' writes ", outp, ": the GPU's INT8 convolutions write fp16 or int8");
    const float s_x = scalar_of(g_.value(xdq.inputs.at(1)));
    std::vector<float> s_w = g_.value(wdq.inputs.at(1)).constant->to_f32();
    const int64_t K = wq.constant->dim(0);
    if (s_w.size() == 1) s_w.assign(static_cast<size_t>(K), s_w[0]);
    KESTREL_CHECK(static_cast<int64_t>(s_w.size()) == K, "INT8 conv '", n.name, "': ", s_w.size(), " weight scales for ", K,
                  " output channels");
    std::vector<float> scale(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) scale[static_cast<size_t>(k)] = s_x * s_w[static_cast<size_t>(k)];  // rounded to float

    BLayer l;
    l.name = n.name;
    l.op = "kestrel.ConvInt8";
    l.attrs = n.attrs;
    if (auto it = n.attrs.all().find("kestrel_fused"); it != n.attrs.all().end())
      if (auto* v = std::get_if<std::vector<std::string>>(&it->second)) l.fused = *v;
    // DQ reads Q's output; Q reads the float value the INT8 input is quantized from.
    auto qp = prod_.find(xdq.inputs.at(0));
    KESTREL_CHECK(qp != prod_.end() && g_.nodes[qp->second].op == "QuantizeLinear", "INT8 conv '", n.name,
                  "': its input DequantizeLinear must read a QuantizeLinear");
    const Node& xq = g_.nodes[qp->second];
    KESTREL_CHECK(scalar_of(g_.value(xq.inputs.at(1))) == s_x, "INT8 conv '", n.name, "': Q and DQ scales differ");
    // The network's first convolution (a few channels of the float32 image) quantizes as it reads.
    const Value& xv = g_.value(xq.inputs.at(0));
    const Shape& ws = wq.constant->shape();
    const bool stem = !xv.is_constant() && xv.dtype == DType::F32 && xv.shape.size() == 4 && xv.shape[1] < 8 &&
                      p_.tensors[cur_.at(xv.name)].dtype == DType::F32 && !(n.inputs.size() > 3 && !n.inputs[3].empty()) &&
                      cuda::conv_stem_int8_supports(static_cast<int>(ws[1]), static_cast<int>(K), static_cast<int>(ws[2]),
                                                    static_cast<int>(ws[3]), static_cast<int>(n.attrs.i("group", 1)));
    if (stem) {
      l.op = "kestrel.ConvInt8Stem";
      l.attrs.set("x_scale", s_x);
      l.fused.push_back("QuantizeLinear");
      l.in.push_back(input_for(xv.name, cuda::Access::Any));
    } else {
      l.in.push_back(quantized(xq.inputs.at(0), s_x));
    }
    l.in.push_back(weight(wq.name + "|ohwi8", wq.name, int8_weight_ohwi(*wq.constant)));
    l.in.push_back(weight(n.name + "|int8_scale", n.name + ".int8_scale", HostTensor::from_f32({K}, scale)));
    if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
      const Value& b = g_.value(n.inputs[2]);
      KESTREL_CHECK(b.is_constant(), "INT8 conv '", n.name, "': bias must be constant");
      l.in.push_back(weight(b.name + "|f32", b.name, b.constant->dtype() == DType::F32 ? *b.constant : b.constant->cast(DType::F32)));
    } else {
      l.in.push_back(-1);
    }
    l.in.push_back(n.inputs.size() > 3 && !n.inputs[3].empty() ? residual(n.inputs[3], l) : -1);
    l.out.push_back(new_output(n.outputs.at(0), true));
    if (auto c = codes_.find(n.outputs[0]); c != codes_.end()) {
      l.attrs.set("out_scale", c->second);
      l.fused.push_back("QuantizeLinear");
    }
    add_layer(std::move(l));
  }

  // An INT8 conv's residual: fp16, or int8 codes (attribute r_scale) when it comes through Q/DQ.
  int residual(const std::string& r, BLayer& l) {
    auto dq = prod_.find(r);
    if (dq == prod_.end() || g_.nodes[dq->second].op != "DequantizeLinear") return input_for(r, cuda::Access::ChannelsLast);
    const Node& rdq = g_.nodes[dq->second];
    auto q = prod_.find(rdq.inputs.at(0));
    KESTREL_CHECK(q != prod_.end() && g_.nodes[q->second].op == "QuantizeLinear", "INT8 conv '", l.name,
                  "': its residual's DequantizeLinear must read a QuantizeLinear");
    const float s_r = scalar_of(g_.value(rdq.inputs.at(1)));
    l.attrs.set("r_scale", s_r);
    return quantized(g_.nodes[q->second].inputs.at(0), s_r);
  }

  void bind_output(const std::string& name, int32_t slot) {
    const Value& v = g_.value(name);
    int src = v.is_constant() ? constant(v) : cur_.at(name);
    BTensor& t = p_.tensors[src];
    bool read_by_layer = false;
    for (const BLayer& l : p_.layers)
      for (int i : l.in) read_by_layer |= i == src;
    const bool direct = t.storage == rt::Storage::Arena && !t.channels_last && t.dtype == v.dtype && !read_by_layer;
    if (direct) {
      t.storage = rt::Storage::Output;
      t.slot = slot;
      p_.outputs.push_back(src);
      return;
    }
    BTensor o;
    o.name = name;
    o.dtype = v.dtype == DType::F16 ? DType::F32 : v.dtype;
    o.shape = v.shape;
    o.storage = rt::Storage::Output;
    o.slot = slot;
    if (t.storage == rt::Storage::Arena) t.name = name + "#internal";
    const int id = p_.add_tensor(std::move(o));
    BLayer l;
    l.name = "output:" + name;
    l.op = "kestrel.Convert";
    l.in = {src};
    l.out = {id};
    add_layer(std::move(l));
    p_.outputs.push_back(id);
  }

  const Graph& g_;
  bool fp16_, int8_;
  BuildPlan p_;
  std::map<std::string, int> cur_, as_cl_, as_rm_, weights_, as_int8_, as_int8_count_;
  std::map<std::string, float> codes_;  // values stored as int8 codes, with their scale
  std::unordered_map<std::string, size_t> prod_;
};

}  // namespace

BuildPlan lower(const Graph& g, const BuilderConfig& cfg) { return Lowering(g, cfg).run(); }

}  // namespace kestrel::bld
