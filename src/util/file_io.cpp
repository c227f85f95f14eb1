#include "util/file_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kestrel/error.h"

namespace kestrel::util {

std::vector<char> read_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail("file not found: ", path);
  if (std::filesystem::is_directory(path, ec)) fail("expected a file, got a directory: ", path);
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open ", path, ": ", std::strerror(errno));
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  f.seekg(0);
  std::vector<char> data(static_cast<size_t>(size));
  if (size > 0 && !f.read(data.data(), size)) fail("cannot read ", path);
  return data;
}

void write_file(const std::string& path, const void* data, size_t size) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail("cannot write ", path, ": ", std::strerror(errno));
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!f) fail("cannot write ", path, ": ", std::strerror(errno));
}

bool is_engine_file(const std::string& path) {
  static constexpr char kMagic[8] = {'K', 'E', 'S', 'T', 'R', 'L', 'E', 'N'};
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  return f && f.read(magic, 8) && std::memcmp(magic, kMagic, 8) == 0;
}

}  // namespace kestrel::util
