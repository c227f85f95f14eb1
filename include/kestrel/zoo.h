#pragma once
// The built-in model zoo: YOLOv8 and YOLO11 detectors at every Ultralytics scale (n/s/m/l/x), written
// with the network-definition API (kestrel/network.h). The graphs have the layout of an Ultralytics ONNX
// detection export -- input "images" [B,3,S,S] float32, output "output0" [B, 4+nc, anchors] with boxes
// decoded in-graph -- and the same node structure and names as our exports in shared/data/models, so
// every engine, pass and post-processor sees them exactly as it sees an imported model.
//
// Weights are seeded random (Conv weights ~ N(0,1)/sqrt(fan_in), biases ~ N(0, 0.1^2), like
// shared/bench/yolo_arch.py); load_weights_from() copies trained ones in from an imported model.
// Uses: benchmarking any scale without an export, and tests of the builder on big models.
#include <cstdint>
#include <string>
#include <vector>

#include "kestrel/graph.h"

namespace kestrel::zoo {

struct BuildOptions {
  int64_t batch = 1;
  int64_t imgsz = 640;  // square; a multiple of 32 (the largest stride)
  uint64_t seed = 0;
  int64_t num_classes = 80;
};

// "yolov8n" ... "yolov8x", "yolo11n" ... "yolo11x".
Graph build(const std::string& name, const BuildOptions& options = {});
const std::vector<std::string>& names();
bool has(const std::string& name);

// Ultralytics' compound-scaling multipliers of one model.
struct Scale {
  double depth;          // repeats = max(round(n * depth), 1)
  double width;          // channels = make_divisible(min(c, max_channels) * width, 8)
  int64_t max_channels;
};
Scale scale_of(const std::string& name);  // throws for an unknown name, listing the valid ones

// The 80 COCO class names, in the order COCO-trained Ultralytics models use.
const std::vector<std::string>& coco80_names();

}  // namespace kestrel::zoo

namespace kestrel {

struct LoadOptions {
  int64_t batch = 0;  // 0: the ONNX model's own (1 for a zoo model)
  int64_t imgsz = 0;  // 0: the ONNX model's own, or 640
  uint64_t seed = 0;  // zoo models only
};

// An ONNX file (a path ending in .onnx, or any existing file) is imported; anything else must be a zoo
// name. An unknown name is an error that lists the zoo's names.
Graph load_model(const std::string& spec, const LoadOptions& options = {});

// Copies the Conv weights and biases of `source` into `target`, pairing the two graphs' Conv nodes in
// order (both must come from the same architecture, e.g. a zoo graph and the ONNX export of that
// model). Shapes must match exactly; any difference in count or shape is an error naming both nodes.
// Returns the number of tensors copied.
size_t load_weights_from(Graph& target, const Graph& source);

}  // namespace kestrel
