// Labels are drawn on machines without a TrueType font (built-in bitmap font), with text that
// contrasts with every palette colour; annotated-picture paths never replace a source or each other.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kestrel/error.h"
#include "kestrel/image.h"
#include "kestrel/yolo.h"

using kestrel::image::Image;
using kestrel::yolo::Box;
namespace fs = std::filesystem;

namespace {

// Pixels in [x0, x1) x [y0, y1) equal to colour c.
int count(const Image& img, int x0, int y0, int x1, int y1, std::array<uint8_t, 3> c) {
  int n = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const uint8_t* p = img.pixel(x, y);
      n += p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
    }
  return n;
}

TEST(DrawFallback, BuiltInFontDrawsTheLabelText) {
  Image img = Image::filled(320, 240, 40, 40, 40);
  kestrel::yolo::DrawOptions o;
  o.font_path = "builtin";
  o.font_px = 24;
  const std::vector<Box> boxes = {{60, 100, 300, 220, 0.91f, 0}};
  kestrel::yolo::draw_detections(img, boxes, {"person"}, o);
  const auto bg = kestrel::yolo::class_color(0);
  const auto text = kestrel::yolo::label_text_color(bg);
  // The label sits above the box: its background in the class colour, with text pixels in it.
  const int label_bg = count(img, 58, 60, 300, 100, bg), label_text = count(img, 58, 60, 300, 100, text);
  EXPECT_GT(label_bg, 1000) << "no label background";
  EXPECT_GT(label_text, 60) << "no text drawn";
  // Text width grows with the string: "person 0.91" is wider than "p 0.91".
  Image small = Image::filled(320, 240, 40, 40, 40);
  kestrel::yolo::draw_detections(small, boxes, {"p"}, o);
  EXPECT_LT(count(small, 0, 60, 320, 100, bg), label_bg);
}

TEST(DrawFallback, BuiltInFontIsChosenByEnvironmentToo) {
  ::setenv("KESTREL_FONT", "builtin", 1);
  Image a = Image::filled(200, 150, 40, 40, 40), b = a;
  kestrel::yolo::DrawOptions o;
  o.font_px = 16;
  const std::vector<Box> boxes = {{20, 60, 180, 140, 0.5f, 3}};
  EXPECT_NO_THROW(kestrel::yolo::draw_detections(a, boxes, kestrel::yolo::coco80_names(), o));
  o.font_path = "builtin";
  kestrel::yolo::draw_detections(b, boxes, kestrel::yolo::coco80_names(), o);
  ::unsetenv("KESTREL_FONT");
  EXPECT_EQ(a.bgr, b.bgr);
}

TEST(DrawFallback, AnExplicitFontThatDoesNotLoadIsAnError) {
  Image img = Image::filled(100, 100);
  kestrel::yolo::DrawOptions o;
  o.font_path = "/nonexistent/font.ttf";
  EXPECT_THROW(kestrel::yolo::draw_detections(img, {{10, 30, 90, 90, 0.5f, 0}}, {"a"}, o), kestrel::Error);
}

TEST(Palette, LabelTextIsReadableOnEveryClassColour) {
  for (int cls = 0; cls < 20; ++cls) {
    const auto bg = kestrel::yolo::class_color(cls);
    EXPECT_GE(kestrel::yolo::contrast_ratio(bg, kestrel::yolo::label_text_color(bg)), 4.5) << "class " << cls;
  }
  EXPECT_NEAR(kestrel::yolo::contrast_ratio({0, 0, 0}, {255, 255, 255}), 21.0, 1e-9);
}

TEST(AnnotatedPaths, OneFilePerSourceInTheOutFolder) {
  const auto p = kestrel::yolo::annotated_image_paths("out", {"a/x.jpg", "b/y.png"});
  EXPECT_EQ(p, (std::vector<std::string>{"out/x.jpg", "out/y.png"}));
}

TEST(AnnotatedPaths, CollidingNamesAndSourcesAreRefused) {
  std::string msg;
  try {
    kestrel::yolo::annotated_image_paths("out", {"a/x.jpg", "b/x.jpg"});
  } catch (const kestrel::Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("a/x.jpg and b/x.jpg would both be saved as out/x.jpg"), std::string::npos) << msg;
  // --out naming the folder being predicted, spelled differently.
  const fs::path d = fs::temp_directory_path() / ("kestrel_annot_" + std::to_string(::getpid()));
  fs::create_directories(d / "imgs");
  std::ofstream(d / "imgs" / "x.jpg") << "x";
  msg.clear();
  try {
    kestrel::yolo::annotated_image_paths((d / "imgs" / "." ).string() + "/", {(d / "imgs" / "x.jpg").string()});
  } catch (const kestrel::Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("would replace the source image"), std::string::npos) << msg;
  fs::remove_all(d);
}

TEST(WriteImage, AWriteFailureSaysWriteNotRead) {
  std::string msg;
  try {
    kestrel::image::write_image("/nonexistent/folder/out.jpg", Image::filled(8, 8));
  } catch (const kestrel::Error& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("cannot write /nonexistent/folder/out.jpg"), std::string::npos) << msg;
}

}  // namespace
