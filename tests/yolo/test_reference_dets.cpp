// Decode + NMS + scale_boxes on the golden raw model outputs must reproduce the reference COCO
// detections (ONNX Runtime outputs through the Ultralytics/YOLOv5 validation post-processing).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>

#include "kestrel/yolo.h"
#include "test_data.h"

using kestrel::yolo::Box;
using kestrel::yolo::HeadKind;

namespace {

// COCO-80 index -> COCO-91 category id (private copy; the evaluator has its own).
constexpr int kCoco80To91[80] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
                                 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
                                 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};

struct Det {
  int cat;
  double x, y, w, h, score;
};

std::vector<float> read_floats(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> bytes{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

nlohmann::json read_json(const std::filesystem::path& p) {
  std::ifstream f(p);
  return nlohmann::json::parse(f);
}

std::vector<Det> reference_dets(const std::string& model, int image_id) {
  static std::map<std::string, nlohmann::json> cache;
  auto it = cache.find(model);
  if (it == cache.end())
    it = cache.emplace(model, read_json(kestrel::test::data_path("eval/" + model + ".coco-val.dets.json"))).first;
  std::vector<Det> out;
  for (const auto& d : it->second) {
    if (d["image_id"].get<int>() != image_id) continue;
    const auto& b = d["bbox"];
    out.push_back({d["category_id"].get<int>(), b[0].get<double>(), b[1].get<double>(), b[2].get<double>(),
                   b[3].get<double>(), d["score"].get<double>()});
  }
  return out;
}

struct Agreement {
  size_t ours = 0, reference = 0, matched = 0;
  double max_box_diff = 0, max_score_diff = 0;
};

// Matches every reference detection to one of ours with the same category and score within the
// reference's 5-decimal rounding, taking the closest box; reports the worst differences.
Agreement compare(const std::vector<Det>& ours, const std::vector<Det>& ref) {
  Agreement a;
  a.ours = ours.size();
  a.reference = ref.size();
  std::vector<char> used(ours.size(), 0);
  for (const Det& r : ref) {
    int best = -1;
    double best_d = 1e9;
    for (size_t i = 0; i < ours.size(); ++i) {
      if (used[i] || ours[i].cat != r.cat || std::abs(ours[i].score - r.score) > 2e-5) continue;
      const double d = std::max({std::abs(ours[i].x - r.x), std::abs(ours[i].y - r.y), std::abs(ours[i].w - r.w),
                                 std::abs(ours[i].h - r.h)});
      if (d < best_d) best_d = d, best = static_cast<int>(i);
    }
    if (best < 0 || best_d > 5e-3) continue;
    used[best] = 1;
    ++a.matched;
    a.max_box_diff = std::max(a.max_box_diff, best_d);
    a.max_score_diff = std::max(a.max_score_diff, std::abs(ours[best].score - r.score));
  }
  return a;
}

void check_model(const std::string& model) {
  KESTREL_REQUIRE_DATA("golden/" + model + ".000000000139.output.bin");
  KESTREL_REQUIRE_DATA("eval/" + model + ".coco-val.dets.json");
  for (const std::string id : {"000000000139", "000000037777"}) {
    const auto meta = read_json(kestrel::test::data_path("golden/" + model + "." + id + ".json"));
    const std::vector<int64_t> shape = meta["output_shape"].get<std::vector<int64_t>>();
    const std::vector<float> out = read_floats(kestrel::test::data_path("golden/" + model + "." + id + ".output.bin"));
    ASSERT_EQ(out.size(), static_cast<size_t>(shape[0] * shape[1] * shape[2]));

    const auto size = kestrel::image::probe_size(kestrel::test::data_path("coco-val/images/" + id + ".jpg").string());
    const auto lb = kestrel::yolo::letterbox_geometry(size.width, size.height, 640);
    ASSERT_NEAR(lb.gain, meta["gain"].get<double>(), 1e-12);
    ASSERT_EQ(lb.pad_left, meta["pad_left_top"][0].get<int>());
    ASSERT_EQ(lb.pad_top, meta["pad_left_top"][1].get<int>());

    const HeadKind kind = kestrel::yolo::detect_head(shape);
    EXPECT_EQ(kind, model == "yolov5n" ? HeadKind::V5 : HeadKind::V8);
    std::vector<Box> boxes =
        kestrel::yolo::postprocess(out.data(), shape, HeadKind::Auto, kestrel::yolo::NmsOptions::validation(kind))[0];
    kestrel::yolo::scale_boxes(boxes, lb);
    std::vector<Det> ours;
    for (const Box& b : boxes)
      ours.push_back({kCoco80To91[b.cls], b.x1, b.y1, double(b.x2) - b.x1, double(b.y2) - b.y1, b.score});

    const Agreement a = compare(ours, reference_dets(model, std::stoi(id)));
    std::printf("[%s %s] dets ours %zu / reference %zu, matched %zu, max |bbox diff| %.2g px, max |score diff| %.2g\n",
                model.c_str(), id.c_str(), a.ours, a.reference, a.matched, a.max_box_diff, a.max_score_diff);
    EXPECT_EQ(a.ours, a.reference) << model << " " << id;
    EXPECT_EQ(a.matched, a.reference) << model << " " << id;
    EXPECT_LE(a.max_box_diff, 1.5e-3) << model << " " << id;  // reference rounds to 3 decimals
    EXPECT_LE(a.max_score_diff, 1e-5) << model << " " << id;  // and to 5 decimals
  }
}

}  // namespace

TEST(ReferenceDets, Yolov8n) { check_model("yolov8n"); }
TEST(ReferenceDets, Yolo11n) { check_model("yolo11n"); }
TEST(ReferenceDets, Yolov5n) { check_model("yolov5n"); }

// The COCO-80 table and names agree with the official category list shipped with the data.
TEST(ReferenceDets, CocoNamesAndIdsMatchInstancesJson) {
  KESTREL_REQUIRE_DATA("coco-val/instances.json");
  const auto inst = read_json(kestrel::test::data_path("coco-val/instances.json"));
  std::vector<std::pair<int, std::string>> cats;
  for (const auto& c : inst["categories"]) cats.emplace_back(c["id"].get<int>(), c["name"].get<std::string>());
  std::sort(cats.begin(), cats.end());
  const auto& names = kestrel::yolo::coco80_names();
  ASSERT_EQ(cats.size(), 80u);
  ASSERT_EQ(names.size(), 80u);
  for (size_t i = 0; i < 80; ++i) {
    EXPECT_EQ(cats[i].first, kCoco80To91[i]) << i;
    EXPECT_EQ(cats[i].second, names[i]) << i;
  }
}
