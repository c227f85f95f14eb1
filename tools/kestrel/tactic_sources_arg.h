#pragma once
// The build verb's --tacticSources, in trtexec's form: a comma-separated list of +SOURCE / -SOURCE
// (CUDNN, CUBLAS_LT) switching BuilderConfig's tactic sources on or off.
#include <string>

#include "kestrel/builder.h"

namespace kestrel::cli {

// Empty spec: the defaults. Throws UsageError on an unknown source or a missing sign.
void apply_tactic_sources(const std::string& spec, BuilderConfig& cfg);

}  // namespace kestrel::cli
