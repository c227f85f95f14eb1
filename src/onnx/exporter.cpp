// Graph -> ONNX ModelProto (see exporter.h). The importer canonicalizes parameter inputs into
// attributes; this writer undoes exactly those rewrites (src/passes/canonicalize.cpp is the list), so
// export(import(m)) computes what m computes.
#include "onnx/exporter.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <type_traits>

#include "kestrel/version.h"
#include "util/file_io.h"

namespace kestrel {

namespace {
constexpr int kMinExportOpset = 13;  // per-axis DequantizeLinear, Split/Squeeze/Unsqueeze inputs

int32_t onnx_type(DType t) {
  switch (t) {
    case DType::F32: return onnx::TensorProto::FLOAT;
    case DType::F16: return onnx::TensorProto::FLOAT16;
    case DType::BF16: return onnx::TensorProto::BFLOAT16;
    case DType::I8: return onnx::TensorProto::INT8;
    case DType::U8: return onnx::TensorProto::UINT8;
    case DType::I32: return onnx::TensorProto::INT32;
    case DType::I64: return onnx::TensorProto::INT64;
    case DType::Bool: return onnx::TensorProto::BOOL;
  }
  return onnx::TensorProto::UNDEFINED;
}

int64_t ir_version_for(int opset) {
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

void to_tensor_proto(const HostTensor& t, const std::string& name, onnx::TensorProto* p) {
  p->set_name(name);
  p->set_data_type(onnx_type(t.dtype()));
  for (int64_t d : t.shape()) p->add_dims(d);
  // raw_data is little-endian; so are the hosts Kestrel runs on (x86-64, aarch64).
  if (t.nbytes()) p->set_raw_data(t.raw(), t.nbytes());
}

void to_value_info(const Value& v, onnx::ValueInfoProto* p) {
  p->set_name(v.name);
  auto* tt = p->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx_type(v.dtype));
  auto* shape = tt->mutable_shape();
  for (int64_t d : v.shape) shape->add_dim()->set_dim_value(d);
}

void set_attribute(const std::string& name, const Attribute& a, onnx::AttributeProto* p) {
  p->set_name(name);
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          p->set_type(onnx::AttributeProto::INT);
          p->set_i(v);
        } else if constexpr (std::is_same_v<T, float>) {
          p->set_type(onnx::AttributeProto::FLOAT);
          p->set_f(v);
        } else if constexpr (std::is_same_v<T, std::string>) {
          p->set_type(onnx::AttributeProto::STRING);
          p->set_s(v);
        } else if constexpr (std::is_same_v<T, std::vector<int64_t>>) {
          p->set_type(onnx::AttributeProto::INTS);
          for (auto x : v) p->add_ints(x);
        } else if constexpr (std::is_same_v<T, std::vector<float>>) {
          p->set_type(onnx::AttributeProto::FLOATS);
          for (auto x : v) p->add_floats(x);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          p->set_type(onnx::AttributeProto::STRINGS);
          for (auto& x : v) p->add_strings(x);
        } else {
          p->set_type(onnx::AttributeProto::TENSOR);
          to_tensor_proto(v, "", p->mutable_t());
        }
      },
      a);
}

class Writer {
 public:
  Writer(const Graph& g, onnx::GraphProto* gp, int opset) : g_(g), gp_(gp), opset_(opset) {
    for (auto& name : g.value_names()) used_.insert(name);
  }

  void node(const Node& in) {
    if (in.op.rfind("kestrel.", 0) == 0)
      fail("cannot export node '", in.name, "': ", in.op, " is a Kestrel fused op (export the unfused graph)");
    Node n = in;
    uncanonicalize(n);
    auto* p = gp_->add_node();
    p->set_name(n.name);
    p->set_op_type(n.op);
    for (auto& i : n.inputs) {
      p->add_input(i);
      if (!i.empty()) need_initializer(i);
    }
    for (auto& o : n.outputs) p->add_output(o);
    std::string doc;
    for (auto& [k, a] : n.attrs.all()) {
      if (k.rfind("kestrel_", 0) == 0) continue;  // Kestrel's annotations are not ONNX attributes
      set_attribute(k, a, p->add_attribute());
    }
    // The quantizer's decisions travel in the doc string, which every ONNX reader ignores.
    if (in.attrs.has("kestrel_precision"))
      p->set_doc_string("kestrel_precision=" + in.attrs.s("kestrel_precision") + "; " +
                        in.attrs.s("kestrel_precision_reason", ""));
  }

  void initializers() {
    for (auto& name : init_order_) to_tensor_proto(*g_.value(name).constant, name, gp_->add_initializer());
    for (auto& [name, t] : extra_) to_tensor_proto(t, name, gp_->add_initializer());
  }

 private:
  void need_initializer(const std::string& v) {
    const Value* val = g_.find(v);
    if (val && val->is_constant() && emitted_.insert(v).second) init_order_.push_back(v);
  }

  std::string add_const(const std::string& base, HostTensor t) {
    std::string name = base;
    for (int i = 1; used_.count(name); ++i) name = base + "_" + std::to_string(i);
    used_.insert(name);
    extra_.emplace_back(name, std::move(t));
    return name;
  }
  std::string ints_input(const Node& n, const std::string& what, const std::vector<int64_t>& v) {
    return add_const(n.name + "_" + what, HostTensor::from_i64({static_cast<int64_t>(v.size())}, v));
  }
  // Moves attribute `attr` back to input `index` (padding skipped optional inputs with "").
  void attr_to_input(Node& n, const char* attr, size_t index, bool as_float_scalar = false) {
    if (!n.attrs.has(attr)) return;
    std::string name;
    if (as_float_scalar) name = add_const(n.name + "_" + attr, HostTensor::scalar_f32(n.attrs.f(attr)));
    else name = ints_input(n, attr, n.attrs.ints(attr));
    if (n.inputs.size() <= index) n.inputs.resize(index + 1);
    n.inputs[index] = name;
    n.attrs.erase(attr);
  }

  void uncanonicalize(Node& n) {
    const std::string& op = n.op;
    if (op == "Reshape") {
      attr_to_input(n, "shape", 1);
    } else if (op == "Unsqueeze" || op == "Squeeze" || op == "ReduceSum") {
      if (opset_ >= 13) attr_to_input(n, "axes", 1);
    } else if (op == "ReduceMean" || op == "ReduceMax" || op == "ReduceMin") {
      if (opset_ >= 18) attr_to_input(n, "axes", 1);
    } else if (op == "Split") {
      if (opset_ >= 13) attr_to_input(n, "split", 1);
    } else if (op == "Slice") {
      if (n.attrs.has("starts")) {
        const auto starts = n.attrs.ints("starts");
        attr_to_input(n, "starts", 1);
        attr_to_input(n, "ends", 2);
        if (!n.attrs.has("axes") && n.attrs.has("steps")) {  // steps needs axes before it
          std::vector<int64_t> axes(starts.size());
          for (size_t i = 0; i < axes.size(); ++i) axes[i] = static_cast<int64_t>(i);
          n.attrs.set("axes", axes);
        }
        attr_to_input(n, "axes", 3);
        attr_to_input(n, "steps", 4);
      }
    } else if (op == "Resize") {
      // Inputs X, roi, scales, sizes: scales when the model gave them, else the resolved sizes.
      n.inputs.resize(1);
      if (n.attrs.has("kestrel_scales")) {
        const auto s = n.attrs.floats("kestrel_scales");
        n.inputs.push_back("");
        n.inputs.push_back(add_const(n.name + "_scales", HostTensor::from_f32({static_cast<int64_t>(s.size())}, s)));
      } else if (n.attrs.has("kestrel_sizes")) {
        n.inputs.push_back("");
        n.inputs.push_back("");
        n.inputs.push_back(ints_input(n, "sizes", n.attrs.ints("kestrel_sizes")));
      }
    } else if (op == "Clip") {
      attr_to_input(n, "min", 1, true);
      attr_to_input(n, "max", 2, true);
    } else if (op == "Pad") {
      attr_to_input(n, "pads", 1);
      attr_to_input(n, "value", 2, true);
    } else if (op == "Softmax" || op == "LogSoftmax") {
      if (n.attrs.has("kestrel_legacy_axis")) {
        // Opset < 13 normalizes over all axes from `axis` on; opset 13 over `axis` only. They agree
        // when axis is the last one.
        const int64_t rank = static_cast<int64_t>(g_.value(n.inputs.at(0)).shape.size());
        int64_t axis = n.attrs.i("axis", 1);
        if (axis < 0) axis += rank;
        if (axis != rank - 1)
          fail("cannot export ", op, " node '", n.name, "': its opset-", g_.opset,
               " semantics (flatten from axis ", axis, ") have no opset-13 equivalent here");
      }
    }
  }

  const Graph& g_;
  onnx::GraphProto* gp_;
  int opset_;
  std::set<std::string> used_, emitted_;
  std::vector<std::string> init_order_;
  std::vector<std::pair<std::string, HostTensor>> extra_;
};
}  // namespace

std::string export_onnx_bytes(const Graph& g, const ExportOptions& options) {
  const int opset = std::max(g.opset, kMinExportOpset);
  onnx::ModelProto m;
  m.set_ir_version(ir_version_for(opset));
  m.set_producer_name("kestrel");
  m.set_producer_version(KESTREL_VERSION_STRING);
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(opset);
  std::map<std::string, std::string> md = g.metadata;
  for (auto& [k, v] : options.metadata) md[k] = v;
  for (auto& [k, v] : md) {
    auto* p = m.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  onnx::GraphProto* gp = m.mutable_graph();
  gp->set_name(g.name.empty() ? "kestrel" : g.name);
  for (auto& in : g.inputs) to_value_info(g.value(in), gp->add_input());
  for (auto& out : g.outputs) {
    const Value& v = g.value(out);
    if (v.is_constant()) fail("cannot export: graph output '", out, "' is a constant");
    to_value_info(v, gp->add_output());
  }
  Writer w(g, gp, opset);
  for (const Node& n : g.nodes) w.node(n);
  w.initializers();
  std::string bytes;
  if (!m.SerializeToString(&bytes)) fail("cannot serialize the ONNX model (larger than 2 GiB?)");
  return bytes;
}

void export_onnx(const Graph& g, const std::string& path, const ExportOptions& options) {
  const std::string bytes = export_onnx_bytes(g, options);
  util::write_file(path, bytes.data(), bytes.size());
}

}  // namespace kestrel
