// COCO instances JSON → Dataset. Keeps what pycocotools' bbox evaluation reads (image ids, annotation ids,
// bbox, area, iscrowd, categories), in file order, because the evaluator's tie-breaking follows it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <unordered_set>

#include "dataset_internal.h"

namespace kestrel::eval::detail {

namespace {

using json = nlohmann::json;

// A JSON integer; integral floats (139.0) are accepted because Python treats them as the same key.
bool as_int64(const json& v, int64_t& out) {
  if (v.is_number_integer()) {
    out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15) {
      out = static_cast<int64_t>(d);
      return true;
    }
  }
  return false;
}

struct Ctx {
  const fs::path& file;
  template <typename... A>
  [[noreturn]] void error(A&&... a) const {
    fail(file.string(), ": ", std::forward<A>(a)...);
  }
  int64_t get_int(const json& obj, const char* key, const char* arr, size_t i) const {
    auto it = obj.find(key);
    if (it == obj.end()) error(arr, "[", i, "] has no \"", key, "\"");
    int64_t v;
    if (!as_int64(*it, v)) error(arr, "[", i, "].", key, " must be an integer");
    return v;
  }
  const json& get_array(const json& root, const char* key, bool required) const {
    static const json empty = json::array();
    auto it = root.find(key);
    if (it == root.end()) {
      if (required) error("no \"", key, "\" list (not a COCO instances file?)");
      return empty;
    }
    if (!it->is_array()) error("\"", key, "\" must be a list");
    return *it;
  }
};

// Where the images of a COCO JSON live. The official layout keeps the JSON in annotations/ and the
// images in <split>/ or images/<split>/; exported datasets often put them in images/ next to the JSON.
struct ImageLocator {
  std::vector<fs::path> dirs;
  explicit ImageLocator(const fs::path& json, fs::path& root) {
    const fs::path dir = json.parent_path().empty() ? fs::path(".") : json.parent_path();
    root = dir.filename() == "annotations" ? dir.parent_path() : dir;
    if (root.empty()) root = ".";
    std::string split = json.stem().string();
    if (split.rfind("instances_", 0) == 0) split = split.substr(10);
    dirs = {root / "images", root};
    if (!split.empty() && split != json.stem().string()) {
      dirs.push_back(root / "images" / split);
      dirs.push_back(root / split);
    }
    if (dir != root) dirs.push_back(dir);
  }
  // First candidate that exists, else "" .
  fs::path find(const std::string& file_name) const {
    std::error_code ec;
    for (const auto& d : dirs)
      if (fs::is_regular_file(d / file_name, ec)) return d / file_name;
    return {};
  }
};

}  // namespace

Dataset load_coco_json(const fs::path& path, const LoadOptions& opts) {
  const Ctx ctx{path};
  json root;
  try {
    root = json::parse(read_text_file(path, "annotation file"));
  } catch (const json::exception& e) {
    ctx.error("invalid JSON: ", e.what());
  }
  if (!root.is_object()) ctx.error("not a COCO instances file (top level is not an object)");

  Dataset ds;
  ds.format = DatasetFormat::Coco;
  ds.annotations = path.string();
  fs::path root_dir;
  const ImageLocator locate(path, root_dir);
  ds.root = root_dir.string();

  // Categories: every listed category is evaluated (pycocotools' catIds = getCatIds()), sorted by id.
  std::unordered_set<int> cat_ids;
  const json& cats = ctx.get_array(root, "categories", true);
  for (size_t i = 0; i < cats.size(); ++i) {
    const json& c = cats[i];
    if (!c.is_object()) ctx.error("categories[", i, "] is not an object");
    const int64_t id = ctx.get_int(c, "id", "categories", i);
    if (id < INT32_MIN || id > INT32_MAX) ctx.error("categories[", i, "].id is out of range");
    if (!cat_ids.insert(static_cast<int>(id)).second) ctx.error("duplicate category id ", id);
    std::string name = std::to_string(id);
    if (auto it = c.find("name"); it != c.end() && it->is_string()) name = it->get<std::string>();
    ds.categories.push_back({static_cast<int>(id), name});
  }
  if (ds.categories.empty()) ctx.error("no categories");
  std::sort(ds.categories.begin(), ds.categories.end(), [](const Category& a, const Category& b) { return a.id < b.id; });
  mark_coco_ids(ds);

  // Images, in file order.
  const json& images = ctx.get_array(root, "images", true);
  if (images.empty()) ctx.error("lists no images (empty dataset)");
  std::unordered_map<int64_t, size_t> image_index;
  std::vector<std::string> file_names;
  for (size_t i = 0; i < images.size(); ++i) {
    const json& im = images[i];
    if (!im.is_object()) ctx.error("images[", i, "] is not an object");
    ImageRecord rec;
    rec.id = ctx.get_int(im, "id", "images", i);
    auto fn = im.find("file_name");
    if (fn == im.end() || !fn->is_string() || fn->get<std::string>().empty())
      ctx.error("images[", i, "] has no \"file_name\"");
    int64_t v;
    if (auto it = im.find("width"); it != im.end() && as_int64(*it, v)) rec.width = static_cast<int>(v);
    if (auto it = im.find("height"); it != im.end() && as_int64(*it, v)) rec.height = static_cast<int>(v);
    if (!image_index.emplace(rec.id, i).second) ctx.error("duplicate image id ", rec.id);
    file_names.push_back(fn->get<std::string>());
    ds.images.push_back(std::move(rec));
  }

  // Annotations, in file order. Those on unlisted images or categories are dropped, as pycocotools'
  // getAnnIds(imgIds, catIds) never returns them, but counted so the user hears about it.
  const json& anns = ctx.get_array(root, "annotations", false);
  std::unordered_set<int64_t> ann_ids;
  size_t unknown_image = 0, unknown_cat = 0;
  for (size_t i = 0; i < anns.size(); ++i) {
    const json& a = anns[i];
    if (!a.is_object()) ctx.error("annotations[", i, "] is not an object");
    GtBox g;
    g.id = ctx.get_int(a, "id", "annotations", i);
    if (!ann_ids.insert(g.id).second) ctx.error("duplicate annotation id ", g.id);
    g.image_id = ctx.get_int(a, "image_id", "annotations", i);
    const int64_t cat = ctx.get_int(a, "category_id", "annotations", i);
    auto bb = a.find("bbox");
    if (bb == a.end() || !bb->is_array() || bb->size() != 4 ||
        !std::all_of(bb->begin(), bb->end(), [](const json& x) { return x.is_number(); }))
      ctx.error("annotations[", i, "].bbox must be [x, y, w, h]");
    g.x = (*bb)[0].get<double>();
    g.y = (*bb)[1].get<double>();
    g.w = (*bb)[2].get<double>();
    g.h = (*bb)[3].get<double>();
    // `area` is the segment area in COCO files and defines small/medium/large; w*h only when absent.
    if (auto it = a.find("area"); it != a.end()) {
      if (!it->is_number()) ctx.error("annotations[", i, "].area must be a number");
      g.area = it->get<double>();
    } else {
      g.area = g.w * g.h;
    }
    if (auto it = a.find("iscrowd"); it != a.end()) {
      int64_t c;
      if (it->is_boolean()) g.iscrowd = it->get<bool>();
      else if (as_int64(*it, c)) g.iscrowd = c != 0;
      else ctx.error("annotations[", i, "].iscrowd must be 0 or 1");
    }
    if (!image_index.count(g.image_id)) {
      ++unknown_image;
      continue;
    }
    if (cat < INT32_MIN || cat > INT32_MAX || !cat_ids.count(static_cast<int>(cat))) {
      ++unknown_cat;
      continue;
    }
    g.category_id = static_cast<int>(cat);
    ds.gt.push_back(g);
  }
  if (unknown_image)
    ds.warnings.push_back(path.string() + ": " + std::to_string(unknown_image) +
                          " annotations refer to images that are not listed (ignored)");
  if (unknown_cat)
    ds.warnings.push_back(path.string() + ": " + std::to_string(unknown_cat) +
                          " annotations refer to categories that are not listed (ignored)");

  // Image files. All missing is almost surely a wrong path (error); a few missing is a damaged copy:
  // those images and their boxes are skipped and counted, so the numbers are not silently off.
  std::unordered_set<int64_t> missing;
  for (size_t i = 0; i < ds.images.size(); ++i) {
    fs::path f = locate.find(file_names[i]);
    if (f.empty()) {
      if (opts.check_images) missing.insert(ds.images[i].id);
      f = locate.dirs[0] / file_names[i];
    }
    ds.images[i].file = f.string();
  }
  if (!missing.empty()) {
    if (missing.size() == ds.images.size())
      ctx.error("none of its ", ds.images.size(), " images was found (looked for \"", file_names[0], "\" in ",
                (root_dir / "images").string(), " and ", root_dir.string(), ")");
    const size_t before = ds.gt.size();
    std::erase_if(ds.gt, [&](const GtBox& g) { return missing.count(g.image_id) > 0; });
    std::erase_if(ds.images, [&](const ImageRecord& r) { return missing.count(r.id) > 0; });
    ds.warnings.push_back(path.string() + ": " + std::to_string(missing.size()) + " of " +
                          std::to_string(missing.size() + ds.images.size()) +
                          " image files are missing; skipped them and their " +
                          std::to_string(before - ds.gt.size()) + " annotations");
  }
  return ds;
}

}  // namespace kestrel::eval::detail
