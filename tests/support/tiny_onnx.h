#pragma once
// Small ONNX models built in memory, so importer and CLI tests need no external data.
#include <string>

namespace kestrel::test {
// images [1,3,8,8] -> Conv(3->4, 3x3, pad 1) -> Relu -> output [1,4,8,8]; weights are deterministic.
std::string tiny_conv_model(int opset = 17);
// Same, with an extra node of an op Kestrel does not support ("NonMaxSuppression", named "nms_0").
std::string tiny_model_with_unsupported_op();
}  // namespace kestrel::test
