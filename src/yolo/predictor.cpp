// Prediction: detections on arbitrary images, annotated pictures and one JSON document.
#include <glob.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "kestrel/image_loader.h"
#include "kestrel/pipeline.h"

namespace fs = std::filesystem;

namespace kestrel::pipeline {

std::vector<std::string> class_names(const std::map<std::string, std::string>& metadata, int num_classes) {
  std::vector<std::string> names;
  if (auto it = metadata.find("names"); it != metadata.end()) {
    // Ultralytics writes a Python dict literal: {0: 'person', 1: 'bicycle', ...}
    static const std::regex entry(R"((\d+)\s*:\s*(['"])(.*?)\2)");
    std::map<int, std::string> by_id;
    for (auto m = std::sregex_iterator(it->second.begin(), it->second.end(), entry); m != std::sregex_iterator(); ++m)
      by_id[std::stoi((*m)[1])] = (*m)[3];
    for (auto& [id, name] : by_id) {
      if (id != static_cast<int>(names.size())) break;
      names.push_back(name);
    }
  }
  if (static_cast<int>(names.size()) != num_classes) {
    names = yolo::coco80_names();
    for (int i = static_cast<int>(names.size()); i < num_classes; ++i) names.push_back("class" + std::to_string(i));
    names.resize(static_cast<size_t>(std::max(num_classes, 0)));
  }
  return names;
}

std::vector<std::string> expand_sources(const std::vector<std::string>& sources) {
  std::vector<std::string> out;
  for (const std::string& s : sources) {
    std::error_code ec;
    if (fs::is_directory(s, ec)) {
      // A broken entry (dangling or looping symlink, unreadable file) is one warning, not the end of the run.
      std::vector<std::string> problems;
      std::vector<std::string> found = image::folder_images(s, &problems);
      for (const auto& p : problems) std::fprintf(stderr, "kestrel: warning: %s\n", p.c_str());
      if (found.empty()) fail("no images (.jpg, .jpeg, .png) in folder ", s);
      out.insert(out.end(), found.begin(), found.end());
    } else if (s.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      if (::glob(s.c_str(), 0, nullptr, &g) != 0) {
        globfree(&g);
        fail("no files match ", s);
      }
      for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
      globfree(&g);
    } else {
      if (!fs::exists(s, ec)) fail("image not found: ", s);
      out.push_back(s);
    }
  }
  if (out.empty()) fail("no images to predict on");
  return out;
}

std::vector<ImagePrediction> predict(InferenceEngine& engine, const std::vector<std::string>& images,
                                     const PredictOptions& options) {
  const Shape in_shape = engine.input_shape();
  KESTREL_CHECK(in_shape.size() == 4 && in_shape[1] == 3 && in_shape[2] == in_shape[3],
                "the model input ", shape_str(in_shape), " is not a square [B,3,S,S] image batch");
  const Shape out_shape = engine.output_shape();
  const yolo::HeadKind head = options.head == yolo::HeadKind::Auto ? yolo::detect_head(out_shape) : options.head;
  const int nc = static_cast<int>(head == yolo::HeadKind::V5 ? out_shape[2] - 5 : out_shape[1] - 4);
  const auto names = class_names(engine.metadata(), nc);
  yolo::NmsOptions nms = yolo::NmsOptions::prediction();
  nms.conf = options.conf;
  nms.iou = options.iou;
  nms.max_det = options.max_det;
  if (!options.out_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.out_dir, ec);
    if (ec) fail("cannot create output folder ", options.out_dir, ": ", ec.message());
  }
  const int64_t B = in_shape[0];
  std::vector<ImagePrediction> preds;
  preds.reserve(images.size());
  image::ImageLoader loader(images, options.decode_threads,
                            image::ImageLoader::window_for_batch(B, options.decode_threads));
  // Where each annotated picture goes, decided before any work: two sources with one file name, or a
  // picture that would replace its source, are refused up front.
  const std::vector<std::string> pictures =
      options.out_dir.empty() ? std::vector<std::string>{} : yolo::annotated_image_paths(options.out_dir, images);
  run_detection(engine, loader, head, nms, false, [&](DetectedBatch& b) {
    size_t decoded = 0;
    for (auto& li : b.items) decoded += li.error.empty();
    // Each image's time: its decode plus its share of the batch's stages.
    const double share =
        decoded ? (b.stages.preprocess_ms + b.stages.inference_ms + b.stages.postprocess_ms) / static_cast<double>(decoded) : 0.0;
    for (size_t i = 0; i < b.items.size(); ++i) {
      image::LoadedImage& li = b.items[i];
      ImagePrediction p;
      p.source = li.path;
      p.ms = li.decode_ms;
      if (!li.error.empty()) {
        p.error = li.error;
      } else {
        p.width = li.image.width;
        p.height = li.image.height;
        p.boxes = std::move(b.boxes[i]);
        p.ms += share;
        if (!options.out_dir.empty()) {
          try {
            yolo::draw_detections(li.image, p.boxes, names);
            p.saved_to = pictures.at(li.index);
            image::write_image(p.saved_to, li.image);
          } catch (const Error& e) {
            p.saved_to.clear();
            p.error = std::string("could not write the annotated picture: ") + e.what();
          }
        }
      }
      if (!options.quiet) {
        if (!p.error.empty()) {
          // Not decoded (no size) is a skipped input; anything later names its own stage.
          std::fprintf(stderr, "kestrel: warning: %s%s\n", p.width == 0 ? "skipped " : "", p.error.c_str());
        } else {
          std::map<int, int> counts;
          for (auto& box : p.boxes) ++counts[box.cls];
          std::string summary;
          for (auto& [cls, count] : counts)
            summary += (summary.empty() ? "" : ", ") + std::to_string(count) + " " + names[static_cast<size_t>(cls)];
          std::printf("image %zu/%zu %s: %dx%d %s, %.1fms\n", preds.size() + 1, images.size(), p.source.c_str(), p.width,
                      p.height, summary.empty() ? "(no detections)" : summary.c_str(), p.ms);
        }
      }
      preds.push_back(std::move(p));
    }
  });
  return preds;
}

std::string predictions_json(const std::vector<ImagePrediction>& preds, const std::vector<std::string>& names) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : preds) {
    nlohmann::json e = {{"image", p.source}, {"width", p.width}, {"height", p.height}};
    if (!p.error.empty()) e["error"] = p.error;
    if (!p.saved_to.empty()) e["annotated"] = p.saved_to;
    e["detections"] = nlohmann::json::array();
    for (const auto& b : p.boxes)
      e["detections"].push_back({{"class_id", b.cls},
                                 {"name", b.cls < static_cast<int>(names.size()) ? names[static_cast<size_t>(b.cls)] : ""},
                                 {"confidence", b.score},
                                 {"box", {{"x1", b.x1}, {"y1", b.y1}, {"x2", b.x2}, {"y2", b.y2}}}});
    j.push_back(e);
  }
  return j.dump(2);
}

}  // namespace kestrel::pipeline
