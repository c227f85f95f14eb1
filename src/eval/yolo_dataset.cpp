// YOLO layout (images/ + labels/*.txt, optional data.yaml) → Dataset, following Ultralytics' rules for
// where labels are, what a line means and which names apply, so that a dataset that trains there
// evaluates here.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <unordered_set>

#include "dataset_internal.h"

namespace kestrel::eval::detail {

namespace {

// Ultralytics' img2label_paths: the last "/images/" becomes "/labels/", the extension ".txt". An image
// outside any images/ folder has its label next to it.
fs::path label_path_for(const fs::path& image) {
  std::string s = image.generic_string();
  const size_t pos = s.rfind("/images/");
  if (pos != std::string::npos) s.replace(pos, 8, "/labels/");
  fs::path p(s);
  p.replace_extension(".txt");
  return p;
}

// The labels folder that corresponds to an images folder (for counting orphan label files).
fs::path label_dir_for(const fs::path& image_dir) {
  std::string s = image_dir.generic_string() + "/";
  const size_t pos = s.rfind("/images/");
  if (pos == std::string::npos) return {};
  s.replace(pos, 8, "/labels/");
  return fs::path(s);
}

bool parse_double(const std::string& tok, double& v) {
  const char* b = tok.data();
  const char* e = b + tok.size();
  if (b != e && *b == '+') ++b;  // from_chars rejects a leading '+', Python's float() accepts it
  auto r = std::from_chars(b, e, v);
  return r.ec == std::errc() && r.ptr == e && std::isfinite(v);
}

struct Sources {
  fs::path root;                       // dataset root (data.yaml `path`, else the folder)
  std::vector<fs::path> images;        // sorted, unique
  std::vector<fs::path> label_dirs;    // labels folders that belong to the image folders
  std::map<int, std::string> names;    // class id → name
  std::vector<std::string> problems;   // folder entries left out (broken symlinks, unreadable files)
};

void add_image_dir(Sources& s, const fs::path& dir) {
  auto imgs = list_images(dir, &s.problems);
  s.images.insert(s.images.end(), imgs.begin(), imgs.end());
  if (fs::path l = label_dir_for(dir); !l.empty()) s.label_dirs.push_back(l);
}

// An image-list file (Ultralytics' val: path/to/val.txt): one path per line, relative to the list's
// folder (Ultralytics resolves "./x" that way) or else to the dataset root.
void add_image_list(Sources& s, const fs::path& list) {
  std::istringstream in(read_text_file(list, "image list"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t b = 0;
    while (b < line.size() && std::isspace(static_cast<unsigned char>(line[b]))) ++b;
    line = line.substr(b);
    if (line.empty()) continue;
    fs::path p(line);
    std::error_code ec;
    if (p.is_relative()) p = fs::exists(list.parent_path() / p, ec) ? list.parent_path() / p : s.root / p;
    if (!fs::is_regular_file(p, ec)) fail(list.string(), ":", n, ": image not found: ", line);
    s.images.push_back(p.lexically_normal());
  }
}

void read_yaml(const fs::path& yaml, Sources& s, std::vector<std::string>& warnings) {
  YAML::Node y;
  try {
    y = YAML::LoadFile(yaml.string());
  } catch (const YAML::Exception& e) {
    fail(yaml.string(), ": invalid YAML: ", e.what());
  }
  if (!y.IsMap()) fail(yaml.string(), ": not a dataset description (expected keys such as names, path, val)");
  const fs::path dir = yaml.parent_path().empty() ? fs::path(".") : yaml.parent_path();
  try {
    s.root = dir;
    if (y["path"] && y["path"].IsScalar()) {
      fs::path p(y["path"].as<std::string>());
      if (p.is_relative()) p = dir / p;
      std::error_code ec;
      if (fs::is_directory(p, ec)) {
        s.root = p.lexically_normal();
      } else {
        // Ultralytics resolves a relative `path` against its own datasets folder; here the YAML's folder
        // is the only sensible anchor, and the YAML's own folder the fallback.
        warnings.push_back(yaml.string() + ": path '" + y["path"].as<std::string>() + "' not found; using " +
                           dir.string());
      }
    }
    std::vector<std::string> vals;
    if (const YAML::Node v = y["val"]; v && v.IsScalar()) {
      vals.push_back(v.as<std::string>());
    } else if (v && v.IsSequence()) {
      for (const auto& e : v) vals.push_back(e.as<std::string>());
    }
    for (const std::string& v : vals) {
      fs::path p(v);
      if (p.is_relative()) p = s.root / p;
      std::error_code ec;
      if (fs::is_directory(p, ec)) add_image_dir(s, p);
      else if (fs::is_regular_file(p, ec) && p.extension() == ".txt") add_image_list(s, p);
      else fail(yaml.string(), ": val entry '", v, "' not found (looked for ", p.string(), ")");
    }
    if (vals.empty()) {
      std::error_code ec;
      if (!fs::is_directory(s.root / "images", ec))
        fail(yaml.string(), ": no `val` key and no images/ folder in ", s.root.string());
      add_image_dir(s, s.root / "images");
    }
    if (const YAML::Node n = y["names"]; n && n.IsSequence()) {
      for (size_t i = 0; i < n.size(); ++i) s.names[static_cast<int>(i)] = n[i].as<std::string>();
    } else if (n && n.IsMap()) {
      for (const auto& kv : n) {
        const int id = kv.first.as<int>();
        if (id < 0) fail(yaml.string(), ": names: negative class id ", id);
        s.names[id] = kv.second.as<std::string>();
      }
    } else if (n) {
      fail(yaml.string(), ": names must be a list or a {id: name} map");
    }
    // As Ultralytics (check_class_names): class ids are 0..n-1, so that a model's class index is the id.
    if (!s.names.empty() && s.names.rbegin()->first != static_cast<int>(s.names.size()) - 1)
      fail(yaml.string(), ": names: class ids must be 0..", s.names.size() - 1, " (found id ",
           s.names.rbegin()->first, ")");
    if (const YAML::Node nc = y["nc"]; nc) {
      const int count = nc.as<int>();
      if (s.names.empty()) {
        for (int i = 0; i < count; ++i) s.names[i] = "class" + std::to_string(i);
      } else if (static_cast<size_t>(count) != s.names.size()) {
        fail(yaml.string(), ": nc is ", count, " but ", s.names.size(), " names are given");
      }
    }
  } catch (const YAML::Exception& e) {
    fail(yaml.string(), ": ", e.what());
  }
}

struct LabelRow {
  int cls;
  double x, y, w, h;  // normalized, top-left corner
};

// One label file; every problem is reported as file:line.
std::vector<LabelRow> read_labels(const fs::path& file, const std::map<int, std::string>& names, size_t& duplicates) {
  std::istringstream in(read_text_file(file, "label file"));
  std::vector<LabelRow> rows;
  std::set<std::vector<double>> seen;
  std::string line;
  int ln = 0;
  std::vector<double> v;
  while (std::getline(in, line)) {
    ++ln;
    auto where = [&] { return file.string() + ":" + std::to_string(ln) + ": "; };
    std::istringstream ls(line);
    v.clear();
    std::string tok;
    while (ls >> tok) {
      double d;
      if (!parse_double(tok, d)) fail(where(), "malformed label line: '", tok, "' is not a number");
      v.push_back(d);
    }
    if (v.empty()) continue;
    const bool box = v.size() == 5, polygon = v.size() >= 7 && v.size() % 2 == 1;
    if (!box && !polygon)
      fail(where(), "malformed label line: ", v.size(),
           " values (expected 'class cx cy w h', or a polygon 'class x1 y1 x2 y2 x3 y3 ...')");
    if (v[0] < 0 || v[0] != std::floor(v[0]) || v[0] > 1e9)
      fail(where(), "class '", v[0], "' is not a non-negative integer");
    const int cls = static_cast<int>(v[0]);
    if (!names.count(cls))
      fail(where(), "class ", cls, " is out of range: the dataset has ", names.size(),
           " class names (give the names in a data.yaml)");
    for (size_t i = 1; i < v.size(); ++i)
      if (v[i] < 0 || v[i] > 1)  // Ultralytics rejects such files as "non-normalized or out of bounds"
        fail(where(), "coordinate ", v[i], " is not normalized to 0..1");
    // Ultralytics drops duplicate rows (a common labelling-tool artefact); so do we, and count them.
    if (!seen.insert(v).second) {
      ++duplicates;
      continue;
    }
    LabelRow r{cls, 0, 0, 0, 0};
    if (box) {
      r.x = v[1] - v[3] / 2;
      r.y = v[2] - v[4] / 2;
      r.w = v[3];
      r.h = v[4];
    } else {  // polygon → enclosing box (Ultralytics' segments2boxes)
      double x0 = v[1], x1 = v[1], y0 = v[2], y1 = v[2];
      for (size_t i = 1; i + 1 < v.size(); i += 2) {
        x0 = std::min(x0, v[i]), x1 = std::max(x1, v[i]);
        y0 = std::min(y0, v[i + 1]), y1 = std::max(y1, v[i + 1]);
      }
      r.x = x0, r.y = y0, r.w = x1 - x0, r.h = y1 - y0;
    }
    rows.push_back(r);
  }
  return rows;
}

// Numeric file stems (COCO's 000000000139.jpg → 139) when they identify every image, else 1..N.
std::vector<int64_t> image_ids_for(const std::vector<fs::path>& images) {
  std::vector<int64_t> ids;
  std::unordered_set<int64_t> seen;
  for (const auto& p : images) {
    const std::string stem = p.stem().string();
    int64_t v = 0;
    auto r = std::from_chars(stem.data(), stem.data() + stem.size(), v);
    if (stem.empty() || r.ec != std::errc() || r.ptr != stem.data() + stem.size() || v < 0 || !seen.insert(v).second) {
      ids.clear();
      for (size_t i = 0; i < images.size(); ++i) ids.push_back(static_cast<int64_t>(i) + 1);
      return ids;
    }
    ids.push_back(v);
  }
  return ids;
}

}  // namespace

Dataset load_yolo(const fs::path& where, const LoadOptions& opts) {
  Dataset ds;
  ds.format = DatasetFormat::Yolo;
  Sources src;
  std::error_code ec;
  if (fs::is_regular_file(where, ec)) {
    ds.annotations = where.string();
    read_yaml(where, src, ds.warnings);
  } else {
    src.root = where;
    if (fs::is_directory(where / "images", ec)) add_image_dir(src, where / "images");
    else if (fs::is_directory(where / "labels", ec)) src.label_dirs.push_back(where / "labels");
    else add_image_dir(src, where);
  }
  ds.warnings.insert(ds.warnings.end(), src.problems.begin(), src.problems.end());
  if (src.names.empty())
    for (int i = 0; i < 80; ++i) src.names[i] = coco80_names()[i];
  ds.root = src.root.string();
  std::sort(src.images.begin(), src.images.end());
  src.images.erase(std::unique(src.images.begin(), src.images.end()), src.images.end());

  // Label files that no image claims: reported, and fatal when there are no images at all (a dataset
  // whose images/ went missing must not evaluate as "empty").
  std::set<fs::path> used;
  for (const auto& im : src.images) used.insert(label_path_for(im).lexically_normal());
  size_t orphans = 0, label_files = 0;
  for (const auto& dir : src.label_dirs) {
    if (!fs::is_directory(dir, ec)) continue;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->path().extension() != ".txt") continue;
      ++label_files;
      orphans += !used.count(it->path().lexically_normal());
    }
  }
  if (src.images.empty()) {
    if (label_files)
      fail("none of the ", label_files, " label files in ", src.root.string(), " has a matching image (images/ missing?)");
    fail("no images found in ", src.root.string(), " (empty dataset)");
  }
  if (orphans)
    ds.warnings.push_back(src.root.string() + ": " + std::to_string(orphans) + " of " + std::to_string(label_files) +
                          " label files have no matching image (ignored)");

  for (const auto& [id, name] : src.names) ds.categories.push_back({id, name});
  mark_coco_ids(ds);  // false: class indices are not COCO ids

  const SizeProbe probe = opts.size_probe ? opts.size_probe : SizeProbe(probe_image_size);
  auto size_of = [&](const fs::path& p) {
    try {
      return probe(p.string());
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      fail(p.string(), ": cannot read the image size: ", e.what());
    }
  };

  const std::vector<int64_t> ids = image_ids_for(src.images);
  size_t duplicates = 0;
  int64_t next_box_id = 1;
  for (size_t i = 0; i < src.images.size(); ++i) {
    ImageRecord rec;
    rec.id = ids[i];
    rec.file = src.images[i].string();
    const fs::path lp = label_path_for(src.images[i]);
    std::vector<LabelRow> rows;
    if (fs::is_regular_file(lp, ec)) rows = read_labels(lp, src.names, duplicates);
    if (!rows.empty()) {
      // The size is needed to turn normalized labels into pixels.
      std::tie(rec.width, rec.height) = size_of(src.images[i]);
      if (rec.width <= 0 || rec.height <= 0)
        fail(rec.file, ": invalid image size ", rec.width, "x", rec.height);
    } else {
      // Only informative for a background image: a format the probe cannot read is no reason to fail.
      try {
        std::tie(rec.width, rec.height) = size_of(src.images[i]);
      } catch (const std::exception&) {
        rec.width = rec.height = 0;
      }
    }
    for (const LabelRow& r : rows) {
      GtBox g;
      g.id = next_box_id++;
      g.image_id = rec.id;
      g.category_id = r.cls;
      g.x = r.x * rec.width;
      g.y = r.y * rec.height;
      g.w = r.w * rec.width;
      g.h = r.h * rec.height;
      g.area = g.w * g.h;
      ds.gt.push_back(g);
    }
    ds.images.push_back(std::move(rec));
  }
  if (duplicates)
    ds.warnings.push_back(src.root.string() + ": removed " + std::to_string(duplicates) + " duplicate label rows");
  return ds;
}

}  // namespace kestrel::eval::detail
