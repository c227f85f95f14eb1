#include "onnx/tensor_proto.h"

#include <cstring>

namespace kestrel::onnx_import {

DType to_dtype(int32_t t, const std::string& what) {
  switch (t) {
    case onnx::TensorProto::FLOAT: return DType::F32;
    case onnx::TensorProto::FLOAT16: return DType::F16;
    case onnx::TensorProto::BFLOAT16: return DType::BF16;
    case onnx::TensorProto::INT8: return DType::I8;
    case onnx::TensorProto::UINT8: return DType::U8;
    case onnx::TensorProto::INT32: return DType::I32;
    case onnx::TensorProto::INT64: return DType::I64;
    case onnx::TensorProto::BOOL: return DType::Bool;
    case onnx::TensorProto::DOUBLE: return DType::F32;  // narrowed on import
    default: fail(what, ": unsupported element type ", onnx::TensorProto::DataType_Name(t), " (", t, ")");
  }
}

HostTensor to_host_tensor(const onnx::TensorProto& t) {
  const std::string what = "tensor '" + t.name() + "'";
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    fail(what, " uses external data, which is not supported: save the model with weights embedded");
  Shape shape;
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d > 0 && n > (int64_t{1} << 40) / d)) fail(what, ": invalid dimensions");
    shape.push_back(d);
    n *= d;
  }
  const DType dt = to_dtype(t.data_type(), what);
  const bool is_double = t.data_type() == onnx::TensorProto::DOUBLE;
  // Check the data is really there before allocating: the dims of a corrupt file can be anything.
  int64_t available = 0;
  if (t.has_raw_data()) {
    available = static_cast<int64_t>(t.raw_data().size() / (is_double ? 8 : dtype_size(dt)));
  } else {
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT: available = t.float_data_size(); break;
      case onnx::TensorProto::DOUBLE: available = t.double_data_size(); break;
      case onnx::TensorProto::INT64: available = t.int64_data_size(); break;
      default: available = t.int32_data_size(); break;
    }
  }
  if (available != n) fail(what, ": has ", available, " values, its dims say ", n);
  HostTensor out(dt, shape);
  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    const size_t src_size = is_double ? 8 : dtype_size(dt);
    if (raw.size() != static_cast<size_t>(n) * src_size)
      fail(what, ": raw data has ", raw.size(), " bytes, expected ", static_cast<size_t>(n) * src_size);
    if (is_double) {
      for (int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, raw.data() + i * 8, 8);
        out.data<float>()[i] = static_cast<float>(v);
      }
    } else if (n) {
      std::memcpy(out.raw(), raw.data(), raw.size());
    }
    return out;
  }
  auto check = [&](int64_t have) {
    if (have != n) fail(what, ": has ", have, " values, expected ", n);
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      check(t.float_data_size());
      for (int64_t i = 0; i < n; ++i) out.data<float>()[i] = t.float_data(static_cast<int>(i));
      break;
    case onnx::TensorProto::DOUBLE:
      check(t.double_data_size());
      for (int64_t i = 0; i < n; ++i) out.data<float>()[i] = static_cast<float>(t.double_data(static_cast<int>(i)));
      break;
    case onnx::TensorProto::INT64:
      check(t.int64_data_size());
      for (int64_t i = 0; i < n; ++i) out.data<int64_t>()[i] = t.int64_data(static_cast<int>(i));
      break;
    case onnx::TensorProto::INT32: case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8:
    case onnx::TensorProto::BOOL: case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16:
      // These types are stored widened in int32_data (16-bit floats as their bit patterns).
      check(t.int32_data_size());
      for (int64_t i = 0; i < n; ++i) {
        const int32_t v = t.int32_data(static_cast<int>(i));
        switch (dt) {
          case DType::I32: out.data<int32_t>()[i] = v; break;
          case DType::I8: out.data<int8_t>()[i] = static_cast<int8_t>(v); break;
          case DType::U8: case DType::Bool: out.data<uint8_t>()[i] = static_cast<uint8_t>(v); break;
          default: out.data<uint16_t>()[i] = static_cast<uint16_t>(v); break;
        }
      }
      break;
    default: fail(what, ": no data");
  }
  return out;
}

}  // namespace kestrel::onnx_import
