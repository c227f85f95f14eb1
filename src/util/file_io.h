#pragma once
#include <string>
#include <vector>

namespace kestrel::util {
// Whole-file reads and writes that throw kestrel::Error naming the path on failure.
std::vector<char> read_file(const std::string& path);
void write_file(const std::string& path, const void* data, size_t size);
// True when the file starts with the Kestrel engine magic (src/runtime/plan.h's kEngineMagic): read
// here, without the CUDA runtime, so every build can recognise an engine file and say what it needs.
bool is_engine_file(const std::string& path);
}  // namespace kestrel::util
