// Default class names (COCO-80, Ultralytics order).
#include "kestrel/yolo.h"
#include "util/coco_classes.h"

namespace kestrel::yolo {

const std::vector<std::string>& coco80_names() { return util::coco80_names(); }

}  // namespace kestrel::yolo
