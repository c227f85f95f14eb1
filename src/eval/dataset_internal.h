#pragma once
// Shared between the dataset loaders (dataset.cpp dispatches, coco_json.cpp and yolo_dataset.cpp load).
#include <filesystem>
#include <string>
#include <vector>

#include "kestrel/eval.h"

namespace kestrel::eval::detail {

namespace fs = std::filesystem;

// Whole file as a string; throws "cannot read <what> <path>".
std::string read_text_file(const fs::path& path, const char* what);

// Extensions the loaders treat as images (lower-case compare), as Ultralytics' IMG_FORMATS.
bool has_image_extension(const fs::path& p);

// All image files under `dir`, recursively, sorted by path (Ultralytics sorts, and a stable order
// makes image ids and reports reproducible).
// Entries that cannot be used (dangling or looping symlinks, unreadable files) are left out, with a
// line each in `problems` when given.
std::vector<fs::path> list_images(const fs::path& dir, std::vector<std::string>* problems = nullptr);

// Sets Dataset::coco_ids from the categories.
void mark_coco_ids(Dataset& ds);

Dataset load_coco_json(const fs::path& json, const LoadOptions& opts);
// `where` is a folder or a data.yaml.
Dataset load_yolo(const fs::path& where, const LoadOptions& opts);

}  // namespace kestrel::eval::detail
