// Writes the fuzzer's seed corpus: small valid models (several opsets) and one with an unsupported op.
#include <filesystem>
#include <fstream>

#include "tiny_onnx.h"

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  int i = 0;
  for (int opset : {11, 13, 17, 21}) std::ofstream(dir / ("seed" + std::to_string(i++))) << kestrel::test::tiny_conv_model(opset);
  std::ofstream(dir / ("seed" + std::to_string(i++))) << kestrel::test::tiny_model_with_unsupported_op();
  return 0;
}
