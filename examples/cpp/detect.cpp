// detect MODEL IMAGE...: objects in images with kestrel::Detector (an ONNX model, a built-in name such
// as yolov8n, or an engine file; CUDA when a GPU is present, else the CPU).
#include <cstdio>
#include <string>
#include <vector>

#include "kestrel/detector.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: detect MODEL IMAGE...\n");
    return 2;
  }
  try {
    kestrel::Detector det(argv[1]);
    const std::vector<std::string> images(argv + 2, argv + argc);
    const auto results = det.detect(images);
    for (size_t i = 0; i < results.size(); ++i) {
      const kestrel::Detections& r = results[i];
      std::printf("%s: %zu objects (%.1f ms inference)\n", images[i].c_str(), r.boxes.size(), r.speed.inference_ms);
      for (const kestrel::yolo::Box& b : r.boxes)
        std::printf("  %-14s %.2f  [%.0f %.0f %.0f %.0f]\n", det.names()[b.cls].c_str(), b.score, b.x1, b.y1, b.x2, b.y2);
    }
  } catch (const kestrel::Error& e) {
    std::fprintf(stderr, "detect: %s\n", e.what());
    return 1;
  }
  return 0;
}
