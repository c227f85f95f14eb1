#include "tactic_sources_arg.h"

#include "kestrel/error.h"

namespace kestrel::cli {

void apply_tactic_sources(const std::string& spec, BuilderConfig& cfg) {
  if (spec.empty()) return;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t comma = spec.find(',', start);
    const std::string item = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? spec.size() + 1 : comma + 1;
    if (item.size() < 2 || (item[0] != '+' && item[0] != '-'))
      throw UsageError("--tacticSources entry '" + item + "' is not +SOURCE or -SOURCE (sources: CUDNN, CUBLAS_LT)");
    const bool on = item[0] == '+';
    const std::string name = item.substr(1);
    if (name == "CUDNN") cfg.cudnn_tactics = on;
    else if (name == "CUBLAS_LT") cfg.cublaslt_tactics = on;
    else throw UsageError("--tacticSources: unknown source '" + name + "' (sources: CUDNN, CUBLAS_LT)");
  }
}

}  // namespace kestrel::cli
