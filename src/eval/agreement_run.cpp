// Running engines for the agreement measure: a folder of unlabelled images as a dataset, and an
// engine's detections on it through the validation pipeline (the same pre- and post-processing that
// mAP is measured with).
#include <algorithm>
#include <filesystem>

#include "kestrel/agreement.h"
#include "kestrel/pipeline.h"

namespace fs = std::filesystem;

namespace kestrel::eval {

Dataset unlabeled_images(const std::string& folder, int num_classes) {
  KESTREL_CHECK(num_classes > 0, "agreement: the model predicts no class");
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) fail("agreement images: ", folder, " is not a readable folder");
  Dataset ds;
  ds.root = folder;
  std::vector<std::string> files;
  fs::directory_iterator it(folder, ec);
  if (ec) fail("agreement images: cannot read folder ", folder, ": ", ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) fail("agreement images: cannot read folder ", folder, ": ", ec.message());
    std::string ext = it->path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if ((ext == ".jpg" || ext == ".jpeg" || ext == ".png") && it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  if (files.empty()) fail("agreement images: no images (.jpg, .jpeg, .png) in folder ", folder);
  std::sort(files.begin(), files.end());
  for (size_t i = 0; i < files.size(); ++i) ds.images.push_back({static_cast<int64_t>(i) + 1, files[i], 0, 0});
  const auto& coco = coco80_names();
  for (int k = 0; k < num_classes; ++k)
    ds.categories.push_back({k, num_classes == 80 ? coco[static_cast<size_t>(k)] : "class" + std::to_string(k)});
  return ds;
}

std::vector<Detection> engine_detections(InferenceEngine& engine, const Dataset& images, double conf, bool progress) {
  pipeline::ValOptions o;
  o.conf = static_cast<float>(conf);
  o.progress = progress;
  pipeline::ValResult r = pipeline::validate(engine, images, o);
  if (r.skipped > 0)
    fail(r.skipped, " of the ", images.images.size(), " images in ", images.root,
         " could not be read; agreement compares every image");
  return std::move(r.detections);
}

}  // namespace kestrel::eval
