#pragma once
// Listing the files of a folder the way a user's folder may really be: symlinks to files and folders
// are followed, and a broken entry -- a dangling or looping symlink, a folder reached twice through a
// symlink cycle, an entry that cannot be read -- is one message naming it, not an exception that ends
// the whole run.
#include <functional>
#include <string>
#include <vector>

namespace kestrel::util {

struct Listing {
  std::vector<std::string> files;     // sorted by path
  std::vector<std::string> problems;  // one line per entry left out, naming it and why
};

// The regular files under `dir` (and its subfolders when `recursive`) whose path passes `keep`. Throws
// kestrel::Error only when `dir` itself cannot be listed.
Listing list_files(const std::string& dir, bool recursive, const std::function<bool(const std::string&)>& keep);

}  // namespace kestrel::util
