#pragma once
#include <string>
#include <vector>

namespace kestrel::util {
// Whole-file reads and writes that throw kestrel::Error naming the path on failure.
std::vector<char> read_file(const std::string& path);
void write_file(const std::string& path, const void* data, size_t size);
}  // namespace kestrel::util
