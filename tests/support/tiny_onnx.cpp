#include "tiny_onnx.h"

#include <onnx/onnx_pb.h>

namespace kestrel::test {

namespace {
onnx::ModelProto base_model(int opset) {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  auto* g = m.mutable_graph();
  g->set_name("tiny");
  auto* in = g->add_input();
  in->set_name("images");
  auto* tt = in->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int d : {1, 3, 8, 8}) tt->mutable_shape()->add_dim()->set_dim_value(d);
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  for (int d : {4, 3, 3, 3}) w->add_dims(d);
  for (int i = 0; i < 4 * 3 * 3 * 3; ++i) w->add_float_data(static_cast<float>((i * 7) % 11 - 5) / 10.f);
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::FLOAT);
  b->add_dims(4);
  for (int i = 0; i < 4; ++i) b->add_float_data(0.1f * static_cast<float>(i));
  auto* conv = g->add_node();
  conv->set_op_type("Conv");
  conv->set_name("conv_0");
  conv->add_input("images");
  conv->add_input("w");
  conv->add_input("b");
  conv->add_output("c");
  auto* pads = conv->add_attribute();
  pads->set_name("pads");
  pads->set_type(onnx::AttributeProto::INTS);
  for (int i = 0; i < 4; ++i) pads->add_ints(1);
  auto* relu = g->add_node();
  relu->set_op_type("Relu");
  relu->set_name("relu_0");
  relu->add_input("c");
  relu->add_output("output0");
  g->add_output()->set_name("output0");
  return m;
}
}  // namespace

std::string tiny_conv_model(int opset) { return base_model(opset).SerializeAsString(); }

std::string tiny_model_with_unsupported_op() {
  onnx::ModelProto m = base_model(17);
  auto* n = m.mutable_graph()->add_node();
  n->set_op_type("NonMaxSuppression");
  n->set_name("nms_0");
  n->add_input("output0");
  n->add_output("nms_out");
  return m.SerializeAsString();
}

}  // namespace kestrel::test
