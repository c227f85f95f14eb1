#include "util/dir_listing.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "kestrel/error.h"

namespace kestrel::util {

namespace fs = std::filesystem;

Listing list_files(const std::string& dir, bool recursive, const std::function<bool(const std::string&)>& keep) {
  Listing out;
  std::error_code ec;
  const fs::path top = fs::canonical(dir, ec);
  if (ec) fail("cannot list ", dir, ": ", ec.message());
  std::set<fs::path> visited{top};  // canonical folders already listed: a symlink cycle ends here
  std::vector<fs::path> pending{dir};
  bool first = true;
  while (!pending.empty()) {
    const fs::path folder = pending.back();
    pending.pop_back();
    fs::directory_iterator it(folder, ec);
    if (ec) {
      if (first) fail("cannot list ", dir, ": ", ec.message());
      out.problems.push_back(folder.string() + ": skipped, the folder cannot be listed (" + ec.message() + ")");
      continue;
    }
    first = false;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      const fs::path p = it->path();
      std::error_code e;
      const fs::file_status st = fs::status(p, e);  // follows symlinks
      if (e || st.type() == fs::file_type::not_found) {
        const bool link = fs::is_symlink(p, e);
        out.problems.push_back(p.string() + ": skipped, " +
                               (link ? std::string("a dangling or looping symlink") : "it cannot be read (" + e.message() + ")"));
        continue;
      }
      if (fs::is_directory(st)) {
        if (!recursive) continue;
        const fs::path real = fs::canonical(p, e);
        if (e) {
          out.problems.push_back(p.string() + ": skipped, the folder cannot be resolved (" + e.message() + ")");
        } else if (!visited.insert(real).second) {
          out.problems.push_back(p.string() + ": skipped, a symlink back to a folder already listed (" + real.string() + ")");
        } else {
          pending.push_back(p);
        }
        continue;
      }
      if (!fs::is_regular_file(st) || !keep(p.string())) continue;
      if (::access(p.c_str(), R_OK) != 0) {
        out.problems.push_back(p.string() + ": skipped, it cannot be read (permission denied)");
        continue;
      }
      out.files.push_back(p.string());
    }
    if (ec) {
      out.problems.push_back(folder.string() + ": listing stopped early (" + ec.message() + ")");
      ec.clear();
    }
  }
  std::sort(out.files.begin(), out.files.end());
  return out;
}

}  // namespace kestrel::util
