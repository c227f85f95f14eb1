#pragma once
// The compare verb's chart: GPU compute latency (x, log scale) against mAP (y), one labelled point per
// precision and batch size, written as a self-contained SVG.
#include <string>
#include <vector>

namespace kestrel::cli {

struct ChartPoint {
  std::string label;  // "fp16 b32"
  double latency_ms = 0;
  double map = -1;  // < 0: not measured (plotted on the axis floor, hollow)
};

std::string latency_map_svg(const std::string& title, const std::vector<ChartPoint>& points);

}  // namespace kestrel::cli
