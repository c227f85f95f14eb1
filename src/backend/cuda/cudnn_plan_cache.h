#pragma once
// A disk cache of cuDNN execution plans that compile at run time (the INT8 convolutions' fused plans:
// 20-400 ms each). cuDNN serializes such a plan as JSON with its compiled kernel; a later process
// (loading an INT8 engine, or building again) restores it instead of compiling. Entries are keyed by
// the operation graph, the plan's rank among the heuristics' configs, the cuDNN version and the GPU, so
// another library or device never sees them. The folder: $KESTREL_CUDNN_CACHE, else
// $XDG_CACHE_HOME/kestrel/cudnn, else ~/.cache/kestrel/cudnn; KESTREL_CUDNN_CACHE=off disables it.
// A missing, unreadable or stale entry only costs the compilation.
#include <optional>
#include <string>

namespace kestrel::cuda {

// The stored JSON for `key`, if any.
std::optional<std::string> load_cudnn_plan(const std::string& key);
// Stores it (best effort: a read-only or full disk is ignored).
void store_cudnn_plan(const std::string& key, const std::string& json);

}  // namespace kestrel::cuda
