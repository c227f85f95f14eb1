#pragma once
// ONNX import: reads an ONNX model (opsets 11-21) into Kestrel's graph IR, folds its shape
// sub-graphs to constants, and keeps the model metadata (Ultralytics writes names/stride/imgsz).
#include <string>

#include "kestrel/graph.h"

namespace kestrel {

struct ImportOptions {
  // Batch to bind: 0 keeps the model's own (1 for a dynamic-batch export). A dynamic-batch model
  // keeps its symbolic batch (Graph::batch_symbol); a static one is re-batched where the graph allows.
  int64_t batch = 0;
  // Square input size to bind when the model's spatial dims are dynamic (0: the model's or 640).
  int64_t imgsz = 0;
};

Graph import_onnx(const std::string& path, const ImportOptions& options = {});
Graph import_onnx_bytes(const void* data, size_t size, const ImportOptions& options = {},
                        const std::string& source_name = "<memory>");

}  // namespace kestrel
