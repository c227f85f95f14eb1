// ONNX -> Kestrel IR. The steps: parse the protobuf, check the opset, convert initializers, inputs
// (binding a dynamic batch / image size), nodes and attributes, then fold the shape sub-graphs and
// canonicalize so later stages see static shapes and attribute-form parameters.
#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx_pb.h>

#include <limits>
#include <set>

#include "ir/op_registry.h"
#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "onnx/tensor_proto.h"
#include "util/file_io.h"

namespace kestrel {

namespace {
constexpr int kMinOpset = 11;
constexpr int kMaxOpset = 21;

Attribute convert_attribute(const onnx::AttributeProto& a, const std::string& node) {
  switch (a.type()) {
    case onnx::AttributeProto::FLOAT: return a.f();
    case onnx::AttributeProto::INT: return a.i();
    case onnx::AttributeProto::STRING: return a.s();
    case onnx::AttributeProto::TENSOR: return onnx_import::to_host_tensor(a.t());
    case onnx::AttributeProto::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case onnx::AttributeProto::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case onnx::AttributeProto::STRINGS: return std::vector<std::string>(a.strings().begin(), a.strings().end());
    default: fail("node '", node, "': attribute '", a.name(), "' has an unsupported type (sub-graphs are not supported)");
  }
}

// Constant's several value_* forms become one "value" tensor.
void normalize_constant(Node& n) {
  if (n.attrs.has("value")) return;
  if (n.attrs.has("value_float")) n.attrs.set("value", HostTensor::scalar_f32(n.attrs.f("value_float")));
  else if (n.attrs.has("value_int")) n.attrs.set("value", HostTensor::scalar_i64(n.attrs.i("value_int")));
  else if (n.attrs.has("value_floats")) {
    auto v = n.attrs.floats("value_floats");
    n.attrs.set("value", HostTensor::from_f32({static_cast<int64_t>(v.size())}, v));
  } else if (n.attrs.has("value_ints")) {
    auto v = n.attrs.ints("value_ints");
    n.attrs.set("value", HostTensor::from_i64({static_cast<int64_t>(v.size())}, v));
  } else {
    fail("Constant node '", n.name, "': no supported value attribute");
  }
}

int model_opset(const onnx::ModelProto& m) {
  for (auto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") return static_cast<int>(o.version());
  return 0;
}
}  // namespace

Graph import_onnx_bytes(const void* data, size_t size, const ImportOptions& options, const std::string& source) {
  onnx::ModelProto model;
  if (size == 0) fail(source, ": empty file, not an ONNX model");
  if (size > static_cast<size_t>(std::numeric_limits<int>::max())) fail(source, ": file larger than 2 GiB");
  {
    google::protobuf::io::CodedInputStream in(static_cast<const uint8_t*>(data), static_cast<int>(size));
    in.SetRecursionLimit(64);
    if (!model.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage())
      fail(source, ": not a valid ONNX model (protobuf parse failed; truncated or not ONNX)");
  }
  if (!model.has_graph() || model.graph().node_size() == 0)
    fail(source, ": not a valid ONNX model (no graph or no nodes)");
  const int opset = model_opset(model);
  if (opset < kMinOpset || opset > kMaxOpset)
    fail(source, ": opset ", opset, " is not supported (Kestrel reads opsets ", kMinOpset, "-", kMaxOpset, ")");

  const onnx::GraphProto& gp = model.graph();
  Graph g;
  g.name = gp.name().empty() ? "model" : gp.name();
  g.opset = opset;
  for (auto& p : model.metadata_props()) g.metadata[p.key()] = p.value();

  for (auto& init : gp.initializer()) {
    Value v;
    v.name = init.name();
    v.constant = onnx_import::to_host_tensor(init);
    v.dtype = v.constant->dtype();
    v.shape = v.constant->shape();
    v.shape_known = true;
    g.add_value(std::move(v));
  }

  // Graph inputs (those that are not initializers), with dynamic dims bound.
  int64_t model_batch = 1;
  for (auto& in : gp.input()) {
    if (g.has_value(in.name())) continue;
    if (!in.type().has_tensor_type()) fail(source, ": input '", in.name(), "' is not a tensor");
    const auto& tt = in.type().tensor_type();
    Value v;
    v.name = in.name();
    v.dtype = onnx_import::to_dtype(tt.elem_type(), "input '" + in.name() + "'");
    const auto& dims = tt.shape().dim();
    for (int i = 0; i < dims.size(); ++i) {
      const auto& d = dims[i];
      if (d.has_dim_value() && d.dim_value() > 0) {
        v.shape.push_back(d.dim_value());
        continue;
      }
      if (i == 0) {
        g.batch_symbol = d.has_dim_param() && !d.dim_param().empty() ? d.dim_param() : "batch";
        v.shape.push_back(1);
      } else if (dims.size() == 4 && i >= 2) {
        v.shape.push_back(options.imgsz > 0 ? options.imgsz : 640);
      } else {
        fail(source, ": input '", in.name(), "' has a dynamic dimension ", i, " that Kestrel cannot bind");
      }
    }
    if (!v.shape.empty()) model_batch = v.shape[0];
    v.shape_known = true;
    g.inputs.push_back(v.name);
    g.add_value(std::move(v));
  }
  if (g.inputs.empty()) fail(source, ": the model has no inputs");

  passes::FoldOptions fold;
  if (options.batch > 0) {
    for (auto& name : g.inputs) {
      Value& v = g.value(name);
      if (!v.shape.empty()) v.shape[0] = options.batch;
    }
    if (g.batch_symbol.empty()) {
      fold.old_batch = model_batch;
      fold.new_batch = options.batch;
    }
  }
  if (options.imgsz > 0 && g.batch_symbol.empty()) {
    for (auto& name : g.inputs) {
      Value& v = g.value(name);
      if (v.shape.size() == 4 && (v.shape[2] != options.imgsz || v.shape[3] != options.imgsz))
        fail(source, ": the model's input is fixed at ", v.shape[2], "x", v.shape[3], "; --imgsz ", options.imgsz,
             " needs a model exported with dynamic spatial dims");
    }
  }

  std::set<std::string> names_seen;
  for (int i = 0; i < gp.node_size(); ++i) {
    const auto& np = gp.node(i);
    Node n;
    n.name = np.name().empty() ? np.op_type() + "_" + std::to_string(i) : np.name();
    n.op = np.op_type();
    if (!np.domain().empty() && np.domain() != "ai.onnx")
      fail("unsupported operator '", np.domain(), ".", n.op, "' in node '", n.name, "' (opset ", opset, ")");
    if (!find_op(n.op)) fail("unsupported operator '", n.op, "' in node '", n.name, "' (opset ", opset, ")");
    if (!names_seen.insert(n.name).second) n.name += "_" + std::to_string(i);
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    for (auto& a : np.attribute()) n.attrs.set(a.name(), convert_attribute(a, n.name));
    if (n.op == "Constant") normalize_constant(n);
    if (n.op == "Softmax" && opset < 13) n.attrs.set("kestrel_legacy_axis", int64_t{1});
    for (auto& o : n.outputs)
      if (!o.empty() && !g.has_value(o)) g.add_value(Value{o, DType::F32, {}, false, std::nullopt});
    g.nodes.push_back(std::move(n));
  }
  for (auto& out : gp.output()) {
    if (!g.has_value(out.name())) fail(source, ": graph output '", out.name(), "' is not produced by any node");
    g.outputs.push_back(out.name());
  }
  if (g.outputs.empty()) fail(source, ": the model has no outputs");

  g.toposort();
  passes::fold_constants(g, fold);
  passes::eliminate_dead_nodes(g);
  passes::canonicalize(g);
  return g;
}

Graph import_onnx(const std::string& path, const ImportOptions& options) {
  const std::vector<char> bytes = util::read_file(path);
  return import_onnx_bytes(bytes.data(), bytes.size(), options, path);
}

}  // namespace kestrel
