// Bad calibration input: each case is a clear one-line error.
#include <gtest/gtest.h>

#include <fstream>

#include "quant_test_util.h"

namespace {
using namespace kestrel;
using test::TempDir;

quant::CalibOptions folder(const std::string& path, int n = 128, bool explicit_n = false) {
  quant::CalibOptions o;
  o.images = path;
  o.max_images = n;
  o.images_explicit = explicit_n;
  o.progress = false;
  return o;
}

void expect_error(const quant::CalibOptions& o, const std::string& part) {
  const std::string msg = test::error_of([&] { quant::calibration_images(o); });
  EXPECT_NE(msg.find(part), std::string::npos) << "message: " << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(CalibImages, SortedAndCappedAtTheDefault) {
  TempDir dir("imgs");
  test::write_images(dir.str(), 5);
  std::ofstream(dir.file("notes.txt")) << "not an image";
  const auto images = quant::calibration_images(folder(dir.str(), 3));
  ASSERT_EQ(images.size(), 3u);
  EXPECT_EQ(images[0], dir.file("img_000.png"));
  EXPECT_EQ(images[2], dir.file("img_002.png"));
  // The default count is a cap: fewer images are all used.
  EXPECT_EQ(quant::calibration_images(folder(dir.str())).size(), 5u);
}

TEST(CalibImages, DatasetFolderUsesItsImagesSubfolder) {
  TempDir dir("dataset");
  std::filesystem::create_directories(dir.path() / "images");
  test::write_images((dir.path() / "images").string(), 2);
  EXPECT_EQ(quant::calibration_images(folder(dir.str())).size(), 2u);
}

TEST(CalibImages, EmptyFolder) {
  TempDir dir("empty");
  expect_error(folder(dir.str()), "contains no images");
}

TEST(CalibImages, MissingFolderOrAFile) {
  expect_error(folder("/nonexistent/calib"), "calibration folder not found: /nonexistent/calib");
  TempDir dir("file");
  std::ofstream(dir.file("x.jpg")) << "x";
  expect_error(folder(dir.file("x.jpg")), "is not a folder");
}

TEST(CalibImages, FewerImagesThanExplicitlyAsked) {
  TempDir dir("few");
  test::write_images(dir.str(), 2);
  expect_error(folder(dir.str(), 10, true), "--calib-images 10 asked for, but");
}

TEST(CalibImages, UnreadableImageIsNamed) {
  TempDir dir("corrupt");
  std::ofstream(dir.file("broken.jpg")) << "definitely not a jpeg";
  const Graph g = test::tiny_fused_graph();
  const std::string msg = test::error_of([&] { quant::load_inputs(g, {dir.file("broken.jpg")}); });
  EXPECT_NE(msg.find("broken.jpg"), std::string::npos) << msg;
}

TEST(CalibImages, ImageSetHashIgnoresTheFolder) {
  TempDir a("set_a"), b("set_b");
  test::write_images(a.str(), 2);
  test::write_images(b.str(), 2);
  EXPECT_EQ(quant::image_set_hash(quant::calibration_images(folder(a.str()))),
            quant::image_set_hash(quant::calibration_images(folder(b.str()))));
  test::write_images(b.str(), 3, 41, 30);
  EXPECT_NE(quant::image_set_hash(quant::calibration_images(folder(a.str()))),
            quant::image_set_hash(quant::calibration_images(folder(b.str()))));
}

TEST(CalibImages, InputsAreTheLetterboxOfInference) {
  TempDir dir("lb");
  test::write_images(dir.str(), 1, 40, 30);
  const Graph g = test::tiny_fused_graph(16);
  const auto inputs = quant::load_inputs(g, quant::calibration_images(folder(dir.str())));
  ASSERT_EQ(inputs.size(), 1u);
  std::vector<float> expected(3 * 16 * 16);
  yolo::letterbox(image::read_image(dir.file("img_000.png")), 16, expected.data());
  EXPECT_EQ(std::vector<float>(inputs[0].data<float>(), inputs[0].data<float>() + expected.size()), expected);
}

}  // namespace
