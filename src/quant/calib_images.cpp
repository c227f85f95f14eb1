// The calibration set: which images, their fingerprint, and turning them into model inputs with the
// very letterbox inference uses (a calibration on differently preprocessed pixels measures ranges the
// engine never sees).
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "kestrel/image.h"
#include "kestrel/quant.h"
#include "kestrel/yolo.h"
#include "quant/hash.h"
#include "util/dir_listing.h"

namespace kestrel::quant {

namespace fs = std::filesystem;

const char* const kLetterboxName = "ultralytics-center-114-rgb-div255";

namespace {
bool is_image(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// The folder's images (not its subfolders). Entries that cannot be used (dangling or looping symlinks,
// unreadable files) are left out with a warning each (with the progress output, on stderr); the
// calibration set is then what could be read, and its hash says so.
std::vector<std::string> list_images(const fs::path& dir, bool warn) {
  util::Listing l;
  try {
    l = util::list_files(dir.string(), false, [](const std::string& p) { return is_image(p); });
  } catch (const Error& e) {
    fail("cannot read calibration folder ", dir.string(), ": ", e.what());
  }
  if (warn)
    for (const std::string& p : l.problems) std::fprintf(stderr, "kestrel: warning: %s\n", p.c_str());
  return l.files;
}
}  // namespace

std::vector<std::string> calibration_images(const CalibOptions& o) {
  if (o.images.empty()) throw UsageError("no calibration images: pass --calib FOLDER");
  if (o.max_images <= 0) throw UsageError("--calib-images must be positive");
  const fs::path root(o.images);
  std::error_code ec;
  if (!fs::exists(root, ec)) fail("calibration folder not found: ", o.images);
  if (!fs::is_directory(root, ec)) fail("calibration path ", o.images, " is not a folder");
  std::vector<std::string> images = list_images(root, o.progress);
  // A dataset folder (coco128/) keeps its pictures in images/.
  if (images.empty() && fs::is_directory(root / "images", ec)) images = list_images(root / "images", o.progress);
  if (images.empty()) fail("calibration folder ", o.images, " contains no images (.jpg, .jpeg, .png)");
  const size_t want = static_cast<size_t>(o.max_images);
  if (o.images_explicit && images.size() < want)
    fail("--calib-images ", want, " asked for, but ", o.images, " holds only ", images.size(), " images");
  if (images.size() > want) images.resize(want);
  return images;
}

std::string image_set_hash(const std::vector<std::string>& images) {
  // File names (not full paths: the same set copied elsewhere is the same set) and byte sizes.
  std::vector<std::pair<std::string, uintmax_t>> entries;
  for (auto& p : images) {
    std::error_code ec;
    const uintmax_t size = fs::file_size(p, ec);
    if (ec) fail("calibration image ", p, ": ", ec.message());
    entries.emplace_back(fs::path(p).filename().string(), size);
  }
  std::sort(entries.begin(), entries.end());
  detail::Fnv1a h;
  for (auto& [name, size] : entries) {
    h.str(name);
    h.u64(size);
  }
  return h.hex();
}

std::vector<HostTensor> load_inputs(const Graph& g, const std::vector<std::string>& images) {
  KESTREL_CHECK(g.inputs.size() == 1, "calibration needs a model with one image input; this one has ", g.inputs.size());
  const Shape shape = g.value(g.inputs[0]).shape;
  KESTREL_CHECK(shape.size() == 4 && shape[1] == 3 && shape[2] == shape[3], "calibration: the model input ",
                shape_str(shape), " is not a square [B,3,S,S] image batch");
  const int64_t B = shape[0], S = shape[2];
  const size_t per_image = static_cast<size_t>(3 * S * S);
  std::vector<HostTensor> batches;
  for (size_t start = 0; start < images.size(); start += static_cast<size_t>(B)) {
    HostTensor t(DType::F32, shape);
    const int64_t n = std::min<int64_t>(B, static_cast<int64_t>(images.size() - start));
    std::vector<std::string> errors(static_cast<size_t>(B));
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < B; ++i) {
      float* slot = t.data<float>() + static_cast<size_t>(i) * per_image;
      if (i >= n) {  // padding of the last batch: the letterbox's grey
        std::fill(slot, slot + per_image, 114.f / 255.f);
        continue;
      }
      try {
        yolo::letterbox(image::read_image(images[start + static_cast<size_t>(i)]), static_cast<int>(S), slot);
      } catch (const Error& e) {
        errors[static_cast<size_t>(i)] = e.what();
      }
    }
    for (auto& e : errors)
      if (!e.empty()) fail("calibration image: ", e);
    batches.push_back(std::move(t));
  }
  return batches;
}

}  // namespace kestrel::quant
