#pragma once
#include <string>
#include <vector>

namespace kestrel::util {
// The COCO-80 class names in the order the released YOLO models (and Ultralytics' coco.yaml) use:
// the one copy behind eval::coco80_names, yolo::coco80_names and zoo::coco80_names.
const std::vector<std::string>& coco80_names();
}  // namespace kestrel::util
