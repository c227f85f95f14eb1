#include "ir/infer_fns.h"

namespace kestrel {

void infer_unary(InferContext& c) {
  DType t = c.dtype(0);
  if (c.node().op == "Not") t = DType::Bool;
  c.set_output(0, t, c.shape(0));
}

void infer_same_as_first(InferContext& c) {
  c.set_output(0, c.dtype(0), c.shape(0));
  // BatchNormalization in training mode has extra outputs; inference graphs never use them.
}

void infer_binary(InferContext& c) {
  if (c.node().op != "Pow" && c.dtype(0) != c.dtype(1))
    c.error(std::string("input dtypes differ: ") + dtype_name(c.dtype(0)) + " vs " + dtype_name(c.dtype(1)));
  c.set_output(0, c.dtype(0), broadcast_shapes(c.shape(0), c.shape(1), c.node()));
}

void infer_compare(InferContext& c) {
  c.set_output(0, DType::Bool, broadcast_shapes(c.shape(0), c.shape(1), c.node()));
}

void infer_variadic(InferContext& c) {
  Shape s = c.shape(0);
  for (size_t i = 1; i < c.num_inputs(); ++i) s = broadcast_shapes(s, c.shape(i), c.node());
  c.set_output(0, c.dtype(0), s);
}

void infer_where(InferContext& c) {
  Shape s = broadcast_shapes(broadcast_shapes(c.shape(0), c.shape(1), c.node()), c.shape(2), c.node());
  c.set_output(0, c.dtype(1), s);
}

DType dtype_from_onnx(int64_t onnx_type, const Node& n) {
  switch (onnx_type) {
    case 1: return DType::F32;
    case 2: return DType::U8;
    case 3: return DType::I8;
    case 6: return DType::I32;
    case 7: return DType::I64;
    case 9: return DType::Bool;
    case 10: return DType::F16;
    case 16: return DType::BF16;
    default: fail(n.op, " node '", n.name, "': unsupported element type ", onnx_type);
  }
}

void infer_cast(InferContext& c) { c.set_output(0, dtype_from_onnx(c.attrs().i("to"), c.node()), c.shape(0)); }

void infer_quantize(InferContext& c) {
  const DType t = c.has_input(2) ? c.dtype(2) : DType::U8;
  if (t != DType::U8 && t != DType::I8) c.error("only int8/uint8 quantization is supported");
  c.set_output(0, t, c.shape(0));
}

void infer_dequantize(InferContext& c) { c.set_output(0, DType::F32, c.shape(0)); }

}  // namespace kestrel
