// Letterbox geometry and pixels: Ultralytics LetterBox + cv2.resize(INTER_LINEAR), checked against
// the golden model inputs made with Python.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>

#include "kestrel/error.h"
#include "kestrel/yolo.h"
#include "test_data.h"

using kestrel::image::Image;
using kestrel::yolo::LetterboxInfo;

namespace {

std::vector<float> read_floats(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::vector<char> bytes{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);  // little-endian host, as the files
  return v;
}

Image gray_row(std::vector<uint8_t> values) {
  Image img = Image::filled(static_cast<int>(values.size()), 1);
  for (size_t i = 0; i < values.size(); ++i) img.bgr[i * 3] = img.bgr[i * 3 + 1] = img.bgr[i * 3 + 2] = values[i];
  return img;
}

}  // namespace

TEST(Letterbox, GeometryMatchesUltralytics) {
  // COCO 139: 640x426, pad only.
  LetterboxInfo a = kestrel::yolo::letterbox_geometry(640, 426, 640);
  EXPECT_DOUBLE_EQ(a.gain, 1.0);
  EXPECT_EQ(a.new_w, 640);
  EXPECT_EQ(a.new_h, 426);
  EXPECT_EQ(a.pad_left, 0);
  EXPECT_EQ(a.pad_top, 107);
  EXPECT_EQ(a.pad_bottom, 107);
  // COCO 37777: 352x230 upscaled by 640/352.
  LetterboxInfo b = kestrel::yolo::letterbox_geometry(352, 230, 640);
  EXPECT_DOUBLE_EQ(b.gain, 640.0 / 352.0);
  EXPECT_EQ(b.new_w, 640);
  EXPECT_EQ(b.new_h, 418);
  EXPECT_EQ(b.pad_top, 111);
  EXPECT_EQ(b.pad_bottom, 111);
  // Odd padding: round(dh - 0.1) on top, round(dh + 0.1) at the bottom.
  LetterboxInfo c = kestrel::yolo::letterbox_geometry(640, 425, 640);
  EXPECT_EQ(c.pad_top, 107);
  EXPECT_EQ(c.pad_bottom, 108);
  // Python round() is ties-to-even: 853 * 0.5 = 426.5 -> 426, 855 * 0.5 = 427.5 -> 428.
  EXPECT_EQ(kestrel::yolo::letterbox_geometry(1280, 853, 640).new_h, 426);
  EXPECT_EQ(kestrel::yolo::letterbox_geometry(1280, 855, 640).new_h, 428);
  // Portrait: pads left/right.
  LetterboxInfo d = kestrel::yolo::letterbox_geometry(427, 640, 640);
  EXPECT_EQ(d.new_w, 427);
  EXPECT_EQ(d.pad_left, 106);
  EXPECT_EQ(d.pad_right, 107);
  for (const LetterboxInfo& i : {a, b, c, d}) {
    EXPECT_EQ(i.pad_left + i.new_w + i.pad_right, 640);
    EXPECT_EQ(i.pad_top + i.new_h + i.pad_bottom, 640);
  }
  EXPECT_THROW(kestrel::yolo::letterbox_geometry(0, 10, 640), kestrel::Error);
}

// Hand-computed OpenCV fixed-point results: cv2.resize(np.uint8([[0, 255]]), (4, 1)) == [0, 64, 191, 255].
TEST(Letterbox, ResizeLinearFixedPointByHand) {
  const Image up = kestrel::yolo::resize_linear(gray_row({0, 255}), 4, 1);
  ASSERT_EQ(up.width, 4);
  EXPECT_EQ(up.bgr[0], 0);
  EXPECT_EQ(up.bgr[3], 64);
  EXPECT_EQ(up.bgr[6], 191);
  EXPECT_EQ(up.bgr[9], 255);
  // Vertical direction: the same numbers through the vertical kernel (unclamped weights on a
  // clamped row index at the top and bottom edges).
  Image col = Image::filled(1, 2);
  std::fill(col.bgr.begin(), col.bgr.begin() + 3, 0);
  std::fill(col.bgr.begin() + 3, col.bgr.end(), 255);
  const Image upv = kestrel::yolo::resize_linear(col, 1, 4);
  EXPECT_EQ(upv.bgr[0], 0);
  EXPECT_EQ(upv.bgr[3], 64);
  EXPECT_EQ(upv.bgr[6], 191);
  EXPECT_EQ(upv.bgr[9], 255);
  // An exact 2x downscale is OpenCV's INTER_AREA fast path: (sum of the 2x2 block + 2) >> 2.
  Image four = Image::filled(4, 2);
  const uint8_t vals[8] = {1, 2, 10, 11, 2, 2, 12, 13};
  for (int i = 0; i < 8; ++i) four.bgr[i * 3] = four.bgr[i * 3 + 1] = four.bgr[i * 3 + 2] = vals[i];
  const Image half = kestrel::yolo::resize_linear(four, 2, 1);
  EXPECT_EQ(half.bgr[0], (1 + 2 + 2 + 2 + 2) >> 2);
  EXPECT_EQ(half.bgr[3], (10 + 11 + 12 + 13 + 2) >> 2);
  // Same size: a copy.
  EXPECT_EQ(kestrel::yolo::resize_linear(four, 4, 2).bgr, four.bgr);
  // A constant image stays constant at any scale.
  const Image flat = Image::filled(13, 7, 90, 91, 92);
  for (auto [w, h] : {std::pair{29, 3}, std::pair{5, 17}, std::pair{26, 14}}) {
    const Image r = kestrel::yolo::resize_linear(flat, w, h);
    for (int i = 0; i < w * h; ++i) {
      ASSERT_EQ(r.bgr[i * 3], 90);
      ASSERT_EQ(r.bgr[i * 3 + 2], 92);
    }
  }
}

TEST(Letterbox, FloatLayoutIsRgbNchwOver255) {
  Image img = Image::filled(4, 2, 10, 20, 30);  // B=10 G=20 R=30
  img.pixel(3, 1)[2] = 255;
  std::vector<float> out(3 * 8 * 8, -1.f);
  const LetterboxInfo info = kestrel::yolo::letterbox(img, 8, out.data());
  EXPECT_DOUBLE_EQ(info.gain, 2.0);
  EXPECT_EQ(info.new_w, 8);
  EXPECT_EQ(info.new_h, 4);
  EXPECT_EQ(info.pad_top, 2);
  auto at = [&](int c, int y, int x) { return out[(c * 8 + y) * 8 + x]; };
  EXPECT_EQ(at(0, 0, 0), 114.f / 255.f);  // padding
  EXPECT_EQ(at(2, 7, 7), 114.f / 255.f);
  EXPECT_EQ(at(0, 2, 0), 30.f / 255.f);  // R plane first
  EXPECT_EQ(at(1, 2, 0), 20.f / 255.f);
  EXPECT_EQ(at(2, 2, 0), 10.f / 255.f);
  EXPECT_EQ(at(0, 5, 7), 1.0f);  // the 255 red corner pixel
  // letterbox_bgr draws the same picture.
  LetterboxInfo info2;
  const Image canvas = kestrel::yolo::letterbox_bgr(img, 8, &info2);
  EXPECT_EQ(info2.pad_top, info.pad_top);
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(at(c, y, x), canvas.pixel(x, y)[2 - c] / 255.f);
  // Batches are filled in place at an offset.
  std::vector<float> batch(2 * 3 * 64, 0.f);
  kestrel::yolo::letterbox(img, 8, batch.data() + 3 * 64);
  EXPECT_EQ(batch[0], 0.f);
  EXPECT_EQ(batch[3 * 64], 114.f / 255.f);
}

// The check that matters: decode the COCO JPEGs and reproduce the golden model inputs.
TEST(Letterbox, ReproducesGoldenInputs) {
  KESTREL_REQUIRE_DATA("golden/000000000139.input.bin");
  for (const std::string id : {"000000000139", "000000037777"}) {
    const Image img = kestrel::image::read_image(kestrel::test::data_path("coco-val/images/" + id + ".jpg").string());
    std::vector<float> ours(3 * 640 * 640);
    const LetterboxInfo info = kestrel::yolo::letterbox(img, 640, ours.data());
    const std::vector<float> golden = read_floats(kestrel::test::data_path("golden/" + id + ".input.bin"));
    ASSERT_EQ(golden.size(), ours.size());

    std::ifstream jf(kestrel::test::data_path("golden/yolov8n." + id + ".json"));
    const auto meta = nlohmann::json::parse(jf);
    EXPECT_NEAR(info.gain, meta["gain"].get<double>(), 1e-12) << id;
    EXPECT_EQ(info.pad_left, meta["pad_left_top"][0].get<int>()) << id;
    EXPECT_EQ(info.pad_top, meta["pad_left_top"][1].get<int>()) << id;

    double max_diff = 0, sum_diff = 0;
    size_t differing = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      const double d = std::abs(double(ours[i]) - double(golden[i]));
      max_diff = std::max(max_diff, d);
      sum_diff += d;
      differing += d != 0;
    }
    std::printf("[letterbox %s] max abs diff %.6g, mean abs diff %.6g, differing values %zu of %zu\n", id.c_str(),
                max_diff, sum_diff / ours.size(), differing, ours.size());
    EXPECT_LE(max_diff, 1.0 / 255 + 1e-7) << id;
    // Bit-exact today (same libjpeg-turbo IDCT/upsampling, same fixed-point resize); keep it so.
    EXPECT_EQ(differing, 0u) << id;
  }
}
