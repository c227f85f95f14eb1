#pragma once
// Kestrel IR -> ONNX. Writes the plain (unfused) graph, e.g. the Q/DQ model `kestrel quantize` makes,
// so that other tools (ONNX Runtime, TensorRT, Netron) read it. Only standard ONNX ops are written: a
// graph still holding kestrel.* fused ops is refused. Parameters the importer turned into attributes
// (Reshape shape, Slice starts, Resize sizes, ...) become inputs again, in the form of the written
// opset (the graph's own, at least 13: per-axis DequantizeLinear needs it). Shapes are written static
// (the graph's bound batch and size).
#include <map>
#include <string>

#include "kestrel/graph.h"

namespace kestrel {

struct ExportOptions {
  std::map<std::string, std::string> metadata;  // added to (and overriding) the graph's metadata
};

std::string export_onnx_bytes(const Graph& g, const ExportOptions& options = {});
void export_onnx(const Graph& g, const std::string& path, const ExportOptions& options = {});

}  // namespace kestrel
