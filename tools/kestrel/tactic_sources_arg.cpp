#include "tactic_sources_arg.h"

#include <sstream>

#include "kestrel/error.h"

namespace kestrel::cli {

void apply_tactic_sources(const std::string& spec, BuilderConfig& cfg) {
  std::istringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
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
