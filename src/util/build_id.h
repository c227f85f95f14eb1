#pragma once
// The GNU build ID of the loaded module (shared library or executable) that holds an address: a hash
// the linker computes over the module's contents, so any change to its code changes it. Caches whose
// entries were measured on some code (the timing cache) key them with it.
#include <string>

namespace kestrel::util {

// Lower-case hex, or "" when no loaded module holds the address or the module carries no build ID.
std::string module_build_id(const void* address);

}  // namespace kestrel::util
