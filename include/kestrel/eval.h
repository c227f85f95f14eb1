#pragma once
// Accuracy measurement: datasets (COCO JSON or YOLO txt layout), COCO results files, and a COCO bbox
// evaluator that reproduces pycocotools' COCOeval (iouType='bbox') number for number.
//
// Why a re-implementation instead of shelling out to Python: Kestrel proves an engine's accuracy on
// machines (Jetson, CI) that have no Python stack, and an FP16/INT8 engine is judged by differences of a
// few 0.1 mAP, so "close to pycocotools" is not good enough: every rule that moves the numbers (stable
// mergesort order, crowd IoU, area ranges, the 101-point envelope, searchsorted, numpy's pairwise mean)
// is reproduced, and the tests check the published 12 numbers of three models.
//
// Everything is float64. All failures a user can cause throw kestrel::Error with a one-line message.
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kestrel/error.h"

namespace kestrel::eval {

// ---------------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------------

struct Category {
  int id = 0;
  std::string name;
};

// One ground-truth box. Coordinates are pixels, (x, y) the top-left corner, as in COCO's `bbox`.
struct GtBox {
  // Annotation id (COCO `id`; YOLO datasets number their boxes 1..N). pycocotools records a match by
  // this id and tests it for non-zero, so a GT with id 0 can never count as a true positive there; the
  // evaluator keeps that quirk so that results stay identical.
  int64_t id = 0;
  int64_t image_id = 0;
  int category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;
  // The size used for the small/medium/large split. COCO files give the *segment* area here (not
  // w*h), and pycocotools uses it, so the loader keeps it verbatim; YOLO boxes use w*h.
  double area = 0;
  // Crowd regions never count as misses and absorb any number of detections (see evaluate_bbox).
  bool iscrowd = false;
};

// One detection (also one entry of a COCO results file).
struct Detection {
  int64_t image_id = 0;
  int category_id = 0;
  double x = 0, y = 0, w = 0, h = 0;  // pixels, top-left corner and size
  double score = 0;
};

struct ImageRecord {
  int64_t id = 0;
  std::string file;           // path of the image file (as found on disk)
  int width = 0, height = 0;  // pixels; 0 when unknown (COCO JSON without sizes)
};

// ---------------------------------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------------------------------

enum class DatasetFormat { Auto, Coco, Yolo };

struct Dataset {
  std::string root;         // dataset folder
  DatasetFormat format = DatasetFormat::Auto;  // what was loaded: Coco or Yolo
  std::string annotations;  // COCO: the instances JSON; YOLO: the data.yaml ("" when none)
  std::vector<ImageRecord> images;  // COCO: JSON order; YOLO: sorted by path
  std::vector<GtBox> gt;            // images without boxes are valid (their detections are false positives)
  std::vector<Category> categories; // sorted by id; every category is evaluated, even one without GT
  // True when the categories are exactly the 80 COCO classes with their official ids 1..90, i.e. a
  // results file written with category_id_for_class() is comparable with official COCO tooling.
  bool coco_ids = false;
  // Non-fatal problems found while loading (skipped images, orphan label files, duplicate label rows).
  // The library never prints; the CLI shows these.
  std::vector<std::string> warnings;

  // Category id for a model's class index: the k-th category in id order. For the COCO JSON this is
  // exactly coco80_to_coco91()[k]; for a YOLO dataset it is the class index itself. Throws when the
  // model has more classes than the dataset.
  int category_id_for_class(int cls) const;
};

// Returns {width, height} in pixels of an image *as a decoder that honours EXIF orientation delivers
// it*; throws kestrel::Error when it cannot.
using SizeProbe = std::function<std::pair<int, int>(const std::string& path)>;

// Default size probe: reads only the header (JPEG SOFn + EXIF orientation, PNG IHDR, BMP), no decode.
// JPEG orientations 5..8 (rotated by 90 degrees) swap width and height, because that is what the decoder
// (and Ultralytics' cv2.imread) delivers and what normalized YOLO labels refer to.
std::pair<int, int> probe_image_size(const std::string& path);

struct LoadOptions {
  DatasetFormat format = DatasetFormat::Auto;
  SizeProbe size_probe;  // YOLO layout only; empty: probe_image_size
  // COCO only: false skips looking for the image files (evaluating a results file against a bare JSON);
  // ImageRecord::file is then the path the image would have.
  bool check_images = true;
};

// Loads a dataset. `path` may be:
//  * a COCO JSON file (`--data path/to/instances_val2017.json`): images are looked up, per file_name, in
//    <dir>/images/, <dir>/, <dir>/images/<split>/, <dir>/<split>/ where <dir> is the JSON's folder (its
//    parent when the JSON sits in annotations/) and <split> the JSON name minus "instances_";
//  * a YAML file (Ultralytics data.yaml): YOLO layout, see below;
//  * a folder. Auto-detection order: data.yaml → YOLO; instances*.json in the folder or in
//    annotations/ → COCO (a folder holding both a JSON and labels/ is read as COCO, because the JSON
//    carries iscrowd and segment areas that the COCO metric needs; force LoadOptions::format otherwise);
//    labels/ or images/ → YOLO.
// YOLO layout: images under images/ (recursively; or the data.yaml's `val`: folder(s) or .txt lists,
// relative to its `path`, itself relative to the YAML), labels at the image path with the last
// "/images/" replaced by "/labels/" and the extension by .txt; lines `class cx cy w h` normalized (a
// polygon `class x1 y1 x2 y2 ...` becomes its enclosing box, as Ultralytics does). A missing label file
// means an image without objects. Class names: data.yaml `names` (list or {id: name}), else COCO-80.
// Category ids are the class indices. Image ids are the numeric file stems when every stem is a unique
// number (COCO-named images keep their COCO ids, as Ultralytics does), else 1..N in path order.
//
// Errors (kestrel::Error): folder/file missing; no images found; malformed JSON/YAML; missing required
// JSON fields; duplicate image or annotation ids; a malformed label line (reported as file:line); a class
// id outside `names`. Missing image files: when *every* image listed by the JSON (or every label file) has
// no image, that is an error; when only some do, those images and their boxes are skipped and a warning
// with the count is added to Dataset::warnings (so one lost file does not stop an evaluation, but the
// count is never silent). JSON annotations whose image or category is not listed are dropped with a
// warning, as pycocotools ignores them.
Dataset load_dataset(const std::string& path, const LoadOptions& options = {});
Dataset load_dataset(const std::string& path, SizeProbe size_probe);

// The 80 COCO class names in Ultralytics' (and the models') class order, and the map from class index
// to the official COCO category id (1..90 with gaps), as Ultralytics' coco80_to_coco91_class().
const std::array<const char*, 80>& coco80_names();
const std::array<int, 80>& coco80_to_coco91();

// ---------------------------------------------------------------------------------------------------
// COCO results files: [{"image_id": 139, "category_id": 72, "bbox": [x, y, w, h], "score": 0.87547}, ...]
// ---------------------------------------------------------------------------------------------------

// Serializes like Ultralytics' --save-json: bbox values rounded as Python's round(v, 3), score as
// round(v, 5), numbers printed as Python's repr and laid out as json.dump does, so that the file is
// byte-identical to what the Python pipeline writes for the same values. Throws on non-finite values.
std::string coco_results_json(const std::vector<Detection>& dets);
void write_coco_results(const std::string& path, const std::vector<Detection>& dets);

// Reads a results file (extra keys are ignored). Throws on malformed JSON or a malformed entry (index
// given). `what` names the source in messages.
std::vector<Detection> parse_coco_results(const std::string& json_text, const std::string& what = "results");
std::vector<Detection> read_coco_results(const std::string& path);

// ---------------------------------------------------------------------------------------------------
// COCO bbox evaluation
// ---------------------------------------------------------------------------------------------------

struct ClassAp {
  int category_id = 0;
  std::string name;
  int images = 0;     // evaluated images with at least one non-crowd GT of this class
  int instances = 0;  // non-crowd GT boxes of this class
  double ap = -1;     // AP@[.50:.95], area all, maxDets 100; -1 when the class has no GT
  double ap50 = -1;   // AP@.50
};

struct CocoStats {
  // pycocotools' stats[0..11]: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
  // -1 where there is nothing to average (no GT in that area range), as pycocotools.
  std::array<double, 12> stats{};
  std::vector<ClassAp> per_class;  // one per category, in category-id order

  // Short names of stats[i]: "AP", "AP50", ..., "ARl".
  static const std::array<const char*, 12>& names();
};

// Evaluates like COCO(gt).loadRes(dets) + COCOeval(iouType='bbox'): evaluate/accumulate/summarize with
// the default parameters (imgIds = image_ids, catIds = the categories' ids).
// Semantics kept from pycocotools: detections get ids 1..N in input order and area w*h; per image and
// category they are ranked by a stable descending sort on score and cut to 100; GTs with iscrowd or
// outside the area range are "ignored" (sorted last, never missed, a detection matched to one is
// neither TP nor FP) and the IoU with a crowd GT is intersection / detection area; unmatched detections
// outside the area range are ignored; GTs and detections of categories not in `categories` are dropped.
// Throws, as loadRes asserts, when a detection refers to an image id not in `image_ids`.
CocoStats evaluate_bbox(const std::vector<int64_t>& image_ids, const std::vector<Category>& categories,
                        const std::vector<GtBox>& gt, const std::vector<Detection>& dets);
CocoStats evaluate_bbox(const Dataset& dataset, const std::vector<Detection>& dets);

// pycocotools' summarize() printout (12 lines, 3 decimals), for logs that people compare by eye.
std::string format_stats(const CocoStats& stats);

}  // namespace kestrel::eval
