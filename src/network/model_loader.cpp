// The zoo's registry and load_model(): one entry point for "a model", whether an ONNX file or a zoo name.
#include <algorithm>
#include <cctype>
#include <filesystem>

#include "kestrel/onnx.h"
#include "kestrel/zoo.h"
#include "network/zoo_blocks.h"
#include "util/file_io.h"

namespace kestrel::zoo {

namespace {
struct Entry {
  const char* name;
  Scale scale;
  Graph (*build)(const std::string&, const Scale&, const BuildOptions&);
};

// depth, width, max_channels: the `scales` blocks of yolov8.yaml and yolo11.yaml.
const Entry kZoo[] = {
    {"yolov8n", {0.33, 0.25, 1024}, detail::build_yolov8}, {"yolov8s", {0.33, 0.50, 1024}, detail::build_yolov8},
    {"yolov8m", {0.67, 0.75, 768}, detail::build_yolov8},  {"yolov8l", {1.00, 1.00, 512}, detail::build_yolov8},
    {"yolov8x", {1.00, 1.25, 512}, detail::build_yolov8},  {"yolo11n", {0.50, 0.25, 1024}, detail::build_yolo11},
    {"yolo11s", {0.50, 0.50, 1024}, detail::build_yolo11}, {"yolo11m", {0.50, 1.00, 512}, detail::build_yolo11},
    {"yolo11l", {1.00, 1.00, 512}, detail::build_yolo11},  {"yolo11x", {1.00, 1.50, 512}, detail::build_yolo11},
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string joined_names() {
  std::string s;
  for (const Entry& e : kZoo) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

const Entry& entry(const std::string& name) {
  const std::string key = lower(name);
  for (const Entry& e : kZoo)
    if (key == e.name) return e;
  fail("unknown zoo model '", name, "'; built-in models: ", joined_names());
}
}  // namespace

const std::vector<std::string>& names() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> n;
    for (const Entry& e : kZoo) n.emplace_back(e.name);
    return n;
  }();
  return v;
}

bool has(const std::string& name) {
  const std::string key = lower(name);
  return std::any_of(std::begin(kZoo), std::end(kZoo), [&](const Entry& e) { return key == e.name; });
}

Scale scale_of(const std::string& name) { return entry(name).scale; }

Graph build(const std::string& name, const BuildOptions& options) {
  const Entry& e = entry(name);
  return e.build(e.name, e.scale, options);
}

}  // namespace kestrel::zoo

namespace kestrel {

Graph load_model(const std::string& spec, const LoadOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool onnx_suffix = spec.size() > 5 && zoo::lower(spec.substr(spec.size() - 5)) == ".onnx";
  if (onnx_suffix || fs::is_regular_file(spec, ec)) {
    if (!fs::exists(spec, ec)) fail("model file '", spec, "' does not exist");
    if (util::is_engine_file(spec))
      fail(spec, " is a Kestrel engine file, not an ONNX model: here the ONNX model it was built from is needed");
    return import_onnx(spec, {options.batch, options.imgsz});
  }
  if (!zoo::has(spec))
    fail("unknown model '", spec, "': not an existing file, nor a built-in model (", zoo::joined_names(), ")");
  zoo::BuildOptions b;
  b.batch = options.batch > 0 ? options.batch : 1;
  b.imgsz = options.imgsz > 0 ? options.imgsz : 640;
  b.seed = options.seed;
  return zoo::build(spec, b);
}

}  // namespace kestrel
