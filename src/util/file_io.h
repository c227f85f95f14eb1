#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace kestrel::util {
// Whole-file reads and writes that throw kestrel::Error naming the path on failure.
std::vector<char> read_file(const std::string& path);

// Every file Kestrel writes goes through write_file: the bytes go to a temporary file in the same
// folder, which is flushed to disk, checked and renamed over `path`. A failed or interrupted write
// (full disk, quota, file-size limit, a crash) leaves the old file, or nothing, never a truncated
// one. A symlink at `path` is followed: its target is replaced, the link stays.
void write_file(const std::string& path, const void* data, size_t size);
void write_file(const std::string& path, std::string_view text);

// Fails, naming `path` and `what` ("--json", "the calibration cache", ...), when `path` could not be
// written later: its folder does not exist or is not writable, or it is a folder. Creates nothing,
// so a run that fails before its output is ready leaves no empty file behind.
void check_writable(const std::string& path, const std::string& what);

// True when the file starts with the Kestrel engine magic (src/runtime/plan.h's kEngineMagic): read
// here, without the CUDA runtime, so every build can recognise an engine file and say what it needs.
bool is_engine_file(const std::string& path);
}  // namespace kestrel::util
