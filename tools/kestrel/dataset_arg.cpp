#include "dataset_arg.h"

#include <cstdio>

#include "kestrel/image.h"

namespace kestrel::cli {

eval::Dataset load_val_dataset(const std::string& path) {
  eval::LoadOptions lo;
  lo.size_probe = [](const std::string& p) {
    const image::ImageSize s = image::probe_size(p);
    return std::pair<int, int>{s.width, s.height};
  };
  eval::Dataset ds = eval::load_dataset(path, lo);
  for (auto& w : ds.warnings) std::fprintf(stderr, "kestrel: warning: %s\n", w.c_str());
  return ds;
}

}  // namespace kestrel::cli
