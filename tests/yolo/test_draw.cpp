// Annotation: boxes in the class colour, labels on a filled background, nothing drawn elsewhere.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "kestrel/error.h"
#include "kestrel/yolo.h"
#include "test_data.h"

using kestrel::image::Image;
using kestrel::yolo::Box;

namespace {

bool same(const uint8_t* p, std::array<uint8_t, 3> c) { return p[0] == c[0] && p[1] == c[1] && p[2] == c[2]; }

bool font_available() {
  if (const char* env = std::getenv("KESTREL_FONT"); env && *env) return true;
  return std::filesystem::exists("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
}

}  // namespace

TEST(Draw, PaletteIsUltralytics) {
  EXPECT_EQ(kestrel::yolo::class_color(0), (std::array<uint8_t, 3>{0xFF, 0x2A, 0x04}));  // #042AFF as BGR
  EXPECT_EQ(kestrel::yolo::class_color(20), kestrel::yolo::class_color(0));
  EXPECT_EQ(kestrel::yolo::class_color(19), (std::array<uint8_t, 3>{0x0B, 0xFF, 0xA2}));
}

TEST(Draw, BoxOutlineAndLabelOnly) {
  if (!font_available()) GTEST_SKIP() << "no DejaVuSans font";
  Image img = Image::filled(200, 150, 40, 40, 40);
  const Image before = img;
  const std::vector<Box> boxes = {{50, 60, 150, 130, 0.91f, 0}};
  kestrel::yolo::draw_detections(img, boxes);
  const auto color = kestrel::yolo::class_color(0);
  // lw = max(round(175 * 0.003), 2) = 2: the outline covers the box edges.
  EXPECT_TRUE(same(img.pixel(100, 60), color));   // top edge
  EXPECT_TRUE(same(img.pixel(100, 130), color));  // bottom edge
  EXPECT_TRUE(same(img.pixel(50, 100), color));   // left edge
  EXPECT_TRUE(same(img.pixel(150, 100), color));  // right edge
  // Inside and far outside: untouched.
  EXPECT_TRUE(same(img.pixel(100, 100), {40, 40, 40}));
  EXPECT_TRUE(same(img.pixel(5, 5), {40, 40, 40}));
  EXPECT_TRUE(same(img.pixel(190, 145), {40, 40, 40}));
  // The label sits above the box's top-left corner, with text pixels in it.
  int label_bg = 0, text = 0;
  for (int y = 35; y < 59; ++y)
    for (int x = 50; x < 120; ++x) {
      const uint8_t* p = img.pixel(x, y);
      label_bg += same(p, color);
      text += !same(p, color) && !same(p, {40, 40, 40});
    }
  EXPECT_GT(label_bg, 200);
  EXPECT_GT(text, 30);
  // Nothing changed outside the box + label region.
  int changed_elsewhere = 0;
  for (int y = 0; y < 150; ++y)
    for (int x = 0; x < 200; ++x) {
      const bool near_box = x >= 48 && x <= 152 && y >= 20 && y <= 132;
      if (!near_box && std::memcmp(img.pixel(x, y), before.pixel(x, y), 3) != 0) ++changed_elsewhere;
    }
  EXPECT_EQ(changed_elsewhere, 0);
}

TEST(Draw, WithoutLabelsNeedsNoFontAndBadFontIsAnError) {
  Image img = Image::filled(64, 64);
  kestrel::yolo::DrawOptions no_labels;
  no_labels.labels = false;
  kestrel::yolo::draw_detections(img, {{10, 10, 50, 50, 0.5f, 3}}, kestrel::yolo::coco80_names(), no_labels);
  EXPECT_TRUE(same(img.pixel(30, 10), kestrel::yolo::class_color(3)));
  EXPECT_TRUE(same(img.pixel(30, 30), {0, 0, 0}));
  kestrel::yolo::DrawOptions bad;
  bad.font_path = "/nonexistent/font.ttf";
  EXPECT_THROW(kestrel::yolo::draw_detections(img, {{10, 10, 50, 50, 0.5f, 3}}, {}, bad), kestrel::Error);
}

TEST(Draw, BoxesAtTheBorderAndUnknownClassesAreSafe) {
  if (!font_available()) GTEST_SKIP() << "no DejaVuSans font";
  Image img = Image::filled(30, 20);
  EXPECT_NO_THROW(
      kestrel::yolo::draw_detections(img, {{-10, -10, 100, 100, 0.3f, 500}, {0, 0, 30, 20, 0.99f, -1}}, {"only"}));
  // The image-sized box (drawn last: highest score) outlines the image in class -1's colour, the palette
  // cycled backwards; its label ("class -1 0.99", wider than the image) sits inside its top edge, on
  // that colour, with text in it. The box beyond every edge leaves no outline inside the image.
  const auto color = kestrel::yolo::class_color(-1);
  EXPECT_EQ(color, kestrel::yolo::class_color(19));
  for (const auto& [x, y] : {std::pair{0, 19}, {15, 19}, {29, 19}, {0, 17}, {0, 0}})
    EXPECT_TRUE(same(img.pixel(x, y), color)) << "pixel " << x << "," << y;
  int text = 0;
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 30; ++x) text += !same(img.pixel(x, y), color);
  EXPECT_GT(text, 5) << "no label text drawn";
  EXPECT_FALSE(same(img.pixel(15, 18), kestrel::yolo::class_color(500))) << "the outside box's colour inside the image";
}

// Annotates COCO 139 with the golden yolov8n output (prediction settings) and writes it to the test
// temp dir for a look.
TEST(Draw, AnnotatesARealImage) {
  KESTREL_REQUIRE_DATA("golden/yolov8n.000000000139.output.bin");
  if (!font_available()) GTEST_SKIP() << "no DejaVuSans font";
  Image img = kestrel::image::read_image(kestrel::test::data_path("coco-val/images/000000000139.jpg").string());
  std::ifstream f(kestrel::test::data_path("golden/yolov8n.000000000139.output.bin"), std::ios::binary);
  std::vector<float> out(84 * 8400);
  f.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size() * 4));
  auto dets = kestrel::yolo::postprocess(out.data(), {1, 84, 8400}, kestrel::yolo::HeadKind::Auto,
                                         kestrel::yolo::NmsOptions::prediction())[0];
  kestrel::yolo::scale_boxes(dets, kestrel::yolo::letterbox_geometry(img.width, img.height, 640));
  ASSERT_FALSE(dets.empty());
  kestrel::yolo::draw_detections(img, dets);
  for (const char* ext : {".jpg", ".png"}) {
    const std::string path = ::testing::TempDir() + "kestrel_yolo_annotated_000000000139" + ext;
    kestrel::image::write_image(path, img);
    std::printf("[draw] %zu detections drawn to %s\n", dets.size(), path.c_str());
    EXPECT_EQ(kestrel::image::probe_size(path).width, 640);
  }
}
