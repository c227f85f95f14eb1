#include "util/paths.h"

#include <filesystem>

#include "kestrel/error.h"

namespace kestrel::util {

namespace fs = std::filesystem;

std::string resolved(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) p = fs::absolute(path, ec).lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();  // "dir/" and "dir" are one folder
  return s;
}

bool same_path(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code ec;
  if (fs::equivalent(a, b, ec)) return true;  // hard links too
  return resolved(a) == resolved(b);
}

bool is_within(const std::string& path, const std::string& folder) {
  if (path.empty() || folder.empty()) return false;
  const std::string p = resolved(path), f = resolved(folder);
  if (p == f) return true;
  return p.size() > f.size() && p.compare(0, f.size(), f) == 0 && (f == "/" || p[f.size()] == '/');
}

void refuse_overwrite(const std::string& output, const std::string& what, const std::string& input,
                      const std::string& input_what) {
  if (same_path(output, input))
    throw UsageError(what + " " + output + " is " + input_what + " (" + input +
                     "): refusing to overwrite an input; write somewhere else");
}

}  // namespace kestrel::util
