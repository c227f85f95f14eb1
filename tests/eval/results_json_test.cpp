// COCO results files: Python-identical rounding and formatting, round trips, and malformed input.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "kestrel/eval.h"
#include "test_data.h"

namespace ke = kestrel::eval;
namespace fs = std::filesystem;

TEST(ResultsJson, RoundsAndPrintsLikePython) {
  // Expected text from Python: json.dumps([{..., "bbox": [round(v, 3) for v in bbox], "score": round(s, 5)}]).
  ke::Detection d{1, 2, 0.0625, -0.0001, 2.3365, 12345678.9, 1e-5};
  std::string got = ke::coco_results_json({d});
  EXPECT_EQ(got, R"([{"image_id": 1, "category_id": 2, "bbox": [0.062, -0.0, 2.337, 12345678.9], "score": 1e-05}])");

  d = {139, 72, 1e16, 0.1875, 1234.5675, 3.0, 0.123456789};
  got = ke::coco_results_json({d, {7, 1, 0, 0, 0, 0, 0.000015}});
  EXPECT_EQ(got,
            R"([{"image_id": 139, "category_id": 72, "bbox": [1e+16, 0.188, 1234.568, 3.0], "score": 0.12346}, )"
            R"({"image_id": 7, "category_id": 1, "bbox": [0.0, 0.0, 0.0, 0.0], "score": 2e-05}])");
  EXPECT_EQ(ke::coco_results_json({}), "[]");
}

TEST(ResultsJson, NonFiniteValuesAreRejected) {
  ke::Detection d{1, 1, 0, 0, std::numeric_limits<double>::quiet_NaN(), 1, 0.5};
  EXPECT_THROW(ke::coco_results_json({d}), kestrel::Error);
  d.w = 1;
  d.score = std::numeric_limits<double>::infinity();
  EXPECT_THROW(ke::coco_results_json({d}), kestrel::Error);
}

TEST(ResultsJson, WriteThenReadBack) {
  const fs::path p = fs::temp_directory_path() / ("kestrel_eval_results_" + std::to_string(::getpid()) + ".json");
  std::vector<ke::Detection> dets = {{139, 72, 2.3371234, 164.41, 154.056, 105.793, 0.875471},
                                     {42, 1, 0, 1, 2, 3, 0.001}};
  ke::write_coco_results(p.string(), dets);
  const auto back = ke::read_coco_results(p.string());
  fs::remove(p);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].image_id, 139);
  EXPECT_EQ(back[0].category_id, 72);
  EXPECT_DOUBLE_EQ(back[0].x, 2.337);
  EXPECT_DOUBLE_EQ(back[0].score, 0.87547);
  EXPECT_DOUBLE_EQ(back[1].h, 3);
}

TEST(ResultsJson, ReferenceFileRoundTripsByteForByte) {
  // The shared reference detections were written by Python's json.dump; re-writing what we read must
  // reproduce the file exactly (same rounding, same repr, same separators).
  KESTREL_REQUIRE_DATA("eval/yolov8n.coco-val.dets.json");
  const fs::path p = kestrel::test::data_path("eval/yolov8n.coco-val.dets.json");
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const auto dets = ke::read_coco_results(p.string());
  EXPECT_GT(dets.size(), 1000u);
  const std::string again = ke::coco_results_json(dets);
  EXPECT_EQ(again.size(), ss.str().size());
  EXPECT_TRUE(again == ss.str());
}

TEST(ResultsJson, MalformedInput) {
  auto expect_error = [](const std::string& text, const std::string& fragment) {
    try {
      ke::parse_coco_results(text, "dets.json");
      ADD_FAILURE() << "expected kestrel::Error for " << text;
    } catch (const kestrel::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("dets.json"), std::string::npos) << e.what();
    }
  };
  expect_error("[{\"image_id\": 1", "invalid JSON");
  expect_error("{}", "list of detections");
  expect_error(R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}, 7])", "entry 1: not an object");
  expect_error(R"([{"image_id": "a.jpg", "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}])", "image_id");
  expect_error(R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}])", "entry 0: bbox");
  expect_error(R"([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}])", "score");
  EXPECT_THROW(ke::read_coco_results("/nonexistent/dets.json"), kestrel::Error);
  EXPECT_TRUE(ke::parse_coco_results("[]").empty());
}
