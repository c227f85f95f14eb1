#pragma once
#include <onnx/onnx_pb.h>

#include "kestrel/tensor.h"

namespace kestrel::onnx_import {
// Converts an ONNX TensorProto (raw_data or typed fields) into a HostTensor; throws on external data,
// unsupported element types or sizes that do not match the dims.
HostTensor to_host_tensor(const onnx::TensorProto& t);
DType to_dtype(int32_t onnx_type, const std::string& what);
}  // namespace kestrel::onnx_import
