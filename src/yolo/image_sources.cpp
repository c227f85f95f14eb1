// The images of a folder for predict and friends: broken entries are reported one by one, never fatal.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "kestrel/image.h"
#include "util/dir_listing.h"

namespace kestrel::image {

std::vector<std::string> folder_images(const std::string& dir, std::vector<std::string>* problems) {
  auto is_image = [](const std::string& p) {
    std::string ext = std::filesystem::path(p).extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
  };
  util::Listing l = util::list_files(dir, false, is_image);
  if (problems) problems->insert(problems->end(), l.problems.begin(), l.problems.end());
  return l.files;
}

}  // namespace kestrel::image
