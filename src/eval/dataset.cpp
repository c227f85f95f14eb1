// load_dataset(): decides which layout a path is and hands it to the COCO or YOLO loader.
#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "dataset_internal.h"
#include "util/dir_listing.h"

namespace kestrel::eval {

namespace detail {

std::string read_text_file(const fs::path& path, const char* what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read ", what, " ", path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail("cannot read ", what, " ", path.string());
  return ss.str();
}

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

bool has_image_extension(const fs::path& p) {
  static const char* exts[] = {".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm"};
  const std::string e = lower(p.extension().string());
  return std::any_of(std::begin(exts), std::end(exts), [&](const char* x) { return e == x; });
}

std::vector<fs::path> list_images(const fs::path& dir, std::vector<std::string>* problems) {
  // Broken entries (dangling or looping symlinks, unreadable files) are reported, not fatal.
  util::Listing l = util::list_files(dir.string(), true, [](const std::string& p) { return has_image_extension(p); });
  if (problems) problems->insert(problems->end(), l.problems.begin(), l.problems.end());
  return {l.files.begin(), l.files.end()};
}

void mark_coco_ids(Dataset& ds) {
  const auto& ids = coco80_to_coco91();
  ds.coco_ids = ds.categories.size() == ids.size();
  for (size_t k = 0; ds.coco_ids && k < ids.size(); ++k) ds.coco_ids = ds.categories[k].id == ids[k];
}

}  // namespace detail

namespace {

namespace fs = std::filesystem;

// instances*.json directly in the folder or in annotations/ (the official COCO layout).
std::vector<fs::path> find_instances_json(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const fs::path& d : {dir, dir / "annotations"}) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    for (const auto& e : fs::directory_iterator(d, ec)) {
      const std::string name = e.path().filename().string();
      if (e.is_regular_file(ec) && name.rfind("instances", 0) == 0 && e.path().extension() == ".json")
        found.push_back(e.path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

Dataset load_coco_folder(const fs::path& dir, const std::vector<fs::path>& jsons, const LoadOptions& opts) {
  if (jsons.empty())
    fail("no COCO annotation file (instances*.json) in ", dir.string(), " or ", (dir / "annotations").string());
  if (jsons.size() > 1) {
    std::string names;
    for (const auto& j : jsons) names += (names.empty() ? "" : ", ") + j.filename().string();
    fail("several COCO annotation files in ", dir.string(), " (", names, "): pass the one to use as the dataset path");
  }
  return detail::load_coco_json(jsons[0], opts);
}

bool is_yaml(const fs::path& p) {
  const std::string e = p.extension().string();
  return e == ".yaml" || e == ".yml";
}

}  // namespace

int Dataset::category_id_for_class(int cls) const {
  if (cls < 0 || static_cast<size_t>(cls) >= categories.size())
    fail("model class ", cls, " has no category in the dataset (it has ", categories.size(),
         " categories): the model and the dataset do not match");
  return categories[cls].id;
}

Dataset load_dataset(const std::string& path, SizeProbe size_probe) {
  LoadOptions o;
  o.size_probe = std::move(size_probe);
  return load_dataset(path, o);
}

Dataset load_dataset(const std::string& path, const LoadOptions& opts) {
  if (path.empty()) fail("dataset path is empty");
  const fs::path p(path);
  std::error_code ec;
  if (!fs::exists(p, ec)) fail("dataset not found: ", path);

  if (!fs::is_directory(p, ec)) {
    if (p.extension() == ".json") {
      if (opts.format == DatasetFormat::Yolo) fail(path, " is a COCO JSON file, not a YOLO dataset");
      return detail::load_coco_json(p, opts);
    }
    if (is_yaml(p)) {
      if (opts.format == DatasetFormat::Coco) fail(path, " is a YOLO data.yaml, not a COCO dataset");
      return detail::load_yolo(p, opts);
    }
    fail("unsupported dataset file ", path, " (expected a folder, a COCO .json or a YOLO data.yaml)");
  }

  const fs::path yaml = fs::exists(p / "data.yaml", ec) ? p / "data.yaml" : fs::path();
  switch (opts.format) {
    case DatasetFormat::Coco:
      return load_coco_folder(p, find_instances_json(p), opts);
    case DatasetFormat::Yolo:
      return detail::load_yolo(yaml.empty() ? p : yaml, opts);
    case DatasetFormat::Auto:
      break;
  }
  // A data.yaml is an explicit statement of the YOLO layout; otherwise prefer the COCO JSON, which has
  // the crowd flags and segment areas the COCO metric is defined on (YOLO labels are derived from it).
  if (!yaml.empty()) return detail::load_yolo(yaml, opts);
  if (auto jsons = find_instances_json(p); !jsons.empty()) return load_coco_folder(p, jsons, opts);
  if (fs::is_directory(p / "images", ec) || fs::is_directory(p / "labels", ec)) return detail::load_yolo(p, opts);
  // A bare folder of images (e.g. --data path/to/images/val2017, whose labels sit at labels/val2017).
  if (!detail::list_images(p).empty()) return detail::load_yolo(p, opts);
  fail(path, " is not a dataset: expected instances*.json (COCO), images/ + labels/ or a data.yaml (YOLO)");
}

}  // namespace kestrel::eval
