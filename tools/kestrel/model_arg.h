#pragma once
// MODEL arguments: an ONNX path or a built-in zoo name (yolov8n, yolo11s, ...).
#include <string>

#include "kestrel/graph.h"

namespace kestrel::cli {
Graph load_graph(const std::string& spec, int64_t batch, int64_t imgsz);
}  // namespace kestrel::cli
