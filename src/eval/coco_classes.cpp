// The COCO-80 class list as the released YOLO models (and Ultralytics' coco.yaml) order it, and the map
// to COCO's official category ids, which skip 11 ids (12, 26, 29, 30, 45, 66, 68, 69, 71, 83 and 91)
// that the 2014 paper defined but never annotated. Predictions written for COCO tooling must use those ids.
#include "kestrel/eval.h"
#include "util/coco_classes.h"

namespace kestrel::eval {

const std::array<const char*, 80>& coco80_names() {
  static const std::array<const char*, 80> names = [] {
    std::array<const char*, 80> a{};
    for (size_t i = 0; i < a.size(); ++i) a[i] = util::coco80_names()[i].c_str();  // static storage: stable
    return a;
  }();
  return names;
}

const std::array<int, 80>& coco80_to_coco91() {
  static const std::array<int, 80> ids = {
      1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
      22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
      46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
      67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};
  return ids;
}

}  // namespace kestrel::eval
