#pragma once
// A disk cache of cuDNN execution plans that compile at run time (the INT8 convolutions' fused plans:
// 20-400 ms each). cuDNN serializes such a plan as JSON with its compiled kernel; a later process
// (loading an INT8 engine, or building again) restores it instead of compiling. Entries are keyed by
// the operation graph, the plan's rank among the heuristics' configs, the cuDNN version and the GPU, so
// another library or device never sees them. The folder: the one set for the cuDNN handle that builds
// the plan (BuilderConfig / RuntimeConfig::cudnn_plan_cache: a server sets it per engine and context),
// else $KESTREL_CUDNN_CACHE, else $XDG_CACHE_HOME/kestrel/cudnn, else ~/.cache/kestrel/cudnn; "off"
// (set or in the variable) disables it. A missing, unreadable or stale entry only costs the compilation.
#include <cudnn.h>

#include <optional>
#include <string>

namespace kestrel::cuda {

// The folder for plans built on handle `h` (an execution context's or a builder's); "" forgets the
// setting (the default folder again), "off" keeps no cache. Set it before the handle builds plans and
// forget it before the handle is destroyed.
void set_cudnn_plan_cache(cudnnHandle_t h, const std::string& folder);

// Whether plans built on handle `h` are kept (a folder is set or found, not "off").
bool cudnn_plan_cache_on(cudnnHandle_t h);

// The stored JSON for `key`, if any.
std::optional<std::string> load_cudnn_plan(cudnnHandle_t h, const std::string& key);
// Stores it (best effort: a read-only or full disk is ignored).
void store_cudnn_plan(cudnnHandle_t h, const std::string& key, const std::string& json);

}  // namespace kestrel::cuda
