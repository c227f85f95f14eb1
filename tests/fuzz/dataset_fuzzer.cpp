// libFuzzer target for the dataset readers. The input is split at its first NUL byte into two files
// in a scratch folder; the first byte after the split selects the layout:
//   COCO: part 1 is instances.json (images are not looked up);
//   YOLO: part 1 is data.yaml, part 2 the label file of the one image (its size is stubbed).
// Any content must load or raise kestrel::Error, never crash, hang or trip a sanitizer. Paths in the
// YAML are the user's choice (an absolute path or ".." may name any folder on the machine), so inputs
// with them are not tried.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "kestrel/eval.h"

namespace fs = std::filesystem;

namespace {
const fs::path& scratch() {
  static const fs::path dir = [] {
    const fs::path base = fs::exists("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const fs::path d = base / ("kestrel_dataset_fuzz_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d / "images");
    fs::create_directories(d / "labels");
    std::ofstream(d / "images" / "a.jpg") << "stub";
    return d;
  }();
  return dir;
}

void put(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary | std::ios::trunc) << text; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string first = in.substr(0, nul);
  const std::string rest = nul == std::string::npos ? "" : in.substr(nul + 1);
  const bool coco = !rest.empty() && (rest[0] & 1);
  const fs::path& d = scratch();
  kestrel::eval::LoadOptions o;
  o.size_probe = [](const std::string&) { return std::pair<int, int>{640, 480}; };
  try {
    if (coco) {
      o.check_images = false;
      put(d / "instances.json", first);
      (void)kestrel::eval::load_dataset((d / "instances.json").string(), o);
    } else {
      if (first.find('/') != std::string::npos || first.find("..") != std::string::npos ||
          first.find('\\') != std::string::npos)
        return 0;
      put(d / "data.yaml", first);
      put(d / "labels" / "a.txt", rest.empty() ? rest : rest.substr(1));
      (void)kestrel::eval::load_dataset((d / "data.yaml").string(), o);
    }
  } catch (const kestrel::Error&) {
  }
  return 0;
}
