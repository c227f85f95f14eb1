#include "util/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kestrel/error.h"

namespace kestrel::util {

namespace fs = std::filesystem;

std::vector<char> read_file(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("file not found: ", path);
  if (fs::is_directory(path, ec)) fail("expected a file, got a directory: ", path);
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open ", path, ": ", std::strerror(errno));
  f.seekg(0, std::ios::end);
  const auto size = f.tellg();
  f.seekg(0);
  std::vector<char> data(static_cast<size_t>(size));
  if (size > 0 && !f.read(data.data(), size)) fail("cannot read ", path);
  return data;
}

namespace {

// The file a write to `path` replaces: a symlink's target (so the link survives), else `path`.
fs::path write_target(const std::string& path) {
  std::error_code ec;
  if (!fs::is_symlink(path, ec)) return path;
  const fs::path target = fs::read_symlink(path, ec);
  if (ec) return path;
  return target.is_absolute() ? target : fs::path(path).parent_path() / target;
}

// Closes the descriptor and removes the temporary file unless the rename happened.
struct TempFile {
  std::string path;
  int fd = -1;
  bool keep = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!keep && !path.empty()) ::unlink(path.c_str());
  }
};

}  // namespace

void write_file(const std::string& path, const void* data, size_t size) {
  const fs::path target = write_target(path);
  std::error_code ec;
  if (fs::is_directory(target, ec)) fail("cannot write ", path, ": it is a folder");
  // Keep the mode of a file being replaced; a new file gets 0666 less the umask, as fopen gives it.
  struct stat st {};
  const bool existed = ::stat(target.c_str(), &st) == 0;
  static std::atomic<unsigned> counter{0};
  TempFile tmp;
  const fs::path dir = target.parent_path();
  tmp.path = (dir / ("." + target.filename().string() + ".tmp" + std::to_string(::getpid()) + "_" +
                     std::to_string(counter++))).string();
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, existed ? (st.st_mode & 07777) : 0666);
  if (tmp.fd < 0) {
    const int err = errno;
    tmp.path.clear();  // nothing was created
    fail("cannot write ", path, ": ", std::strerror(err));
  }
  const char* p = static_cast<const char*>(data);
  for (size_t left = size; left > 0;) {
    const ssize_t n = ::write(tmp.fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write ", path, ": ", n < 0 ? std::strerror(errno) : "no space left");
    p += n, left -= static_cast<size_t>(n);
  }
  if (existed) (void)::fchmod(tmp.fd, st.st_mode & 07777);  // open's mode was masked by the umask
  // On disk before the rename: otherwise a power cut can leave the new name with no data.
  if (::fsync(tmp.fd) != 0) fail("cannot write ", path, ": ", std::strerror(errno));
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) fail("cannot write ", path, ": ", std::strerror(errno));
  if (::rename(tmp.path.c_str(), target.c_str()) != 0) fail("cannot write ", path, ": ", std::strerror(errno));
  tmp.keep = true;
}

void write_file(const std::string& path, std::string_view text) { write_file(path, text.data(), text.size()); }

void check_writable(const std::string& path, const std::string& what) {
  if (path.empty()) return;
  const fs::path target = write_target(path);
  std::error_code ec;
  if (fs::is_directory(target, ec)) fail(what, " ", path, " is a folder, not a file");
  const fs::path dir = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  if (!fs::is_directory(dir, ec)) fail("cannot write ", what, " ", path, ": folder ", dir.string(), " does not exist");
  if (::access(dir.c_str(), W_OK) != 0) fail("cannot write ", what, " ", path, ": ", std::strerror(errno));
}

bool is_engine_file(const std::string& path) {
  static constexpr char kMagic[8] = {'K', 'E', 'S', 'T', 'R', 'L', 'E', 'N'};
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  return f && f.read(magic, 8) && std::memcmp(magic, kMagic, 8) == 0;
}

}  // namespace kestrel::util
