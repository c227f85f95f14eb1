// Annotated-picture paths for predict: one per source, none replacing a source or another picture.
#include <filesystem>
#include <map>

#include "kestrel/error.h"
#include "kestrel/yolo.h"
#include "util/paths.h"

namespace kestrel::yolo {

std::vector<std::string> annotated_image_paths(const std::string& out_dir, const std::vector<std::string>& sources) {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::map<std::string, std::string> taken;  // picture path (resolved) -> the source it belongs to
  std::map<std::string, std::string> source_of;
  for (const std::string& s : sources) source_of.emplace(util::resolved(s), s);
  for (const std::string& s : sources) {
    const std::string picture = (fs::path(out_dir) / fs::path(s).filename()).string();
    const std::string key = util::resolved(picture);
    if (auto it = source_of.find(key); it != source_of.end())
      fail("the annotated picture ", picture, " would replace the source image ", it->second,
           ": pass another --out folder");
    if (auto [it, fresh] = taken.emplace(key, s); !fresh)
      fail(it->second, " and ", s, " would both be saved as ", picture,
           ": their file names collide; predict them into separate --out folders");
    out.push_back(picture);
  }
  return out;
}

}  // namespace kestrel::yolo
