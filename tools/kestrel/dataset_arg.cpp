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
  // Without a single labelled box every AP is undefined: a run would "measure" nothing.
  if (ds.gt.empty())
    fail("no labelled boxes in ", path, " (", ds.images.size(),
         " images, no labels found): nothing to evaluate; for a YOLO dataset, labels/ must sit beside images/");
  return ds;
}

}  // namespace kestrel::cli
