// Image decoding/encoding: cv2.imread-compatible conversions, EXIF orientation, size probing, and
// clean kestrel::Error failures for files that cannot be read.
#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "kestrel/error.h"
#include "kestrel/image.h"
#include "test_data.h"

namespace fs = std::filesystem;
using kestrel::image::Image;

namespace {

std::vector<uint8_t> slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void spit(const fs::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

fs::path temp_path(const std::string& name) {
  fs::path dir = fs::path(::testing::TempDir()) / "kestrel_yolo_tests";
  fs::create_directories(dir);
  return dir / name;
}

// A deterministic colourful test picture.
Image pattern(int w, int h) {
  Image img = Image::filled(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = img.pixel(x, y);
      p[0] = static_cast<uint8_t>(x * 7 + y);
      p[1] = static_cast<uint8_t>(y * 5 + 3 * x);
      p[2] = static_cast<uint8_t>((x / 8 + y / 8) % 2 ? 220 : 30);
    }
  return img;
}

// Writes an arbitrary PNG with libpng directly (the variants cv2 has to convert).
std::vector<uint8_t> make_png(int w, int h, int color_type, int bit_depth, const std::vector<uint8_t>& raw,
                              const std::vector<png_color>& palette = {}, const std::vector<png_byte>& trns = {}) {
  std::vector<uint8_t> out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  png_set_write_fn(
      png, &out,
      [](png_structp p, png_bytep d, png_size_t n) {
        auto* o = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
        o->insert(o->end(), d, d + n);
      },
      nullptr);
  png_set_IHDR(png, info, w, h, bit_depth, color_type, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!palette.empty()) png_set_PLTE(png, info, palette.data(), static_cast<int>(palette.size()));
  if (!trns.empty()) png_set_tRNS(png, info, trns.data(), static_cast<int>(trns.size()), nullptr);
  png_write_info(png, info);
  const size_t row_bytes = raw.size() / h;
  for (int y = 0; y < h; ++y) png_write_row(png, const_cast<png_bytep>(raw.data() + y * row_bytes));
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

// Minimal EXIF APP1 (little-endian TIFF, IFD0 with one Orientation entry) inserted after SOI.
std::vector<uint8_t> with_orientation(const std::vector<uint8_t>& jpeg, int orientation) {
  std::vector<uint8_t> tiff = {'I', 'I', 42, 0, 8, 0, 0, 0,           // header, IFD0 at 8
                               1, 0,                                   // one entry
                               0x12, 0x01, 3, 0, 1, 0, 0, 0,           // tag 0x0112, SHORT, count 1
                               static_cast<uint8_t>(orientation), 0, 0, 0,  // value
                               0, 0, 0, 0};                            // no next IFD
  std::vector<uint8_t> payload = {'E', 'x', 'i', 'f', 0, 0};
  payload.insert(payload.end(), tiff.begin(), tiff.end());
  const size_t len = payload.size() + 2;
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);  // SOI
  out.insert(out.end(), {0xFF, 0xE1, static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len & 0xFF)});
  out.insert(out.end(), payload.begin(), payload.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const kestrel::Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("WRONG EXCEPTION TYPE: ") + e.what();
  }
  return "NO ERROR";
}

}  // namespace

TEST(ImageIo, DecodesCocoJpegAndProbesItsSize) {
  KESTREL_REQUIRE_DATA("coco-val/images/000000000139.jpg");
  const std::string path = kestrel::test::data_path("coco-val/images/000000000139.jpg").string();
  const Image img = kestrel::image::read_image(path);
  EXPECT_EQ(img.width, 640);
  EXPECT_EQ(img.height, 426);
  ASSERT_EQ(img.bgr.size(), 640u * 426u * 3u);
  const auto [w, h] = kestrel::image::probe_size(path);
  EXPECT_EQ(w, 640);
  EXPECT_EQ(h, 426);
}

// Every shared image must decode (the strict truncation check must not reject real data) and the
// header probe must agree with the decoder.
TEST(ImageIo, AllSharedImagesDecodeAndProbeAgrees) {
  KESTREL_REQUIRE_DATA("coco-val/images");
  int count = 0;
  for (const char* dir : {"coco-val/images", "coco128/images"}) {
    const fs::path d = kestrel::test::data_path(dir);
    if (!fs::exists(d)) continue;
    for (const auto& entry : fs::directory_iterator(d)) {
      const std::string p = entry.path().string();
      Image img;
      ASSERT_NO_THROW(img = kestrel::image::read_image(p)) << p;
      const auto size = kestrel::image::probe_size(p);
      EXPECT_EQ(size.width, img.width) << p;
      EXPECT_EQ(size.height, img.height) << p;
      ++count;
    }
  }
  EXPECT_GT(count, 100);
}

TEST(ImageIo, PngRoundTripIsLossless) {
  const Image img = pattern(37, 23);
  const auto bytes = kestrel::image::encode_png(img);
  const Image back = kestrel::image::decode_image(bytes.data(), bytes.size());
  EXPECT_EQ(back.width, 37);
  EXPECT_EQ(back.height, 23);
  EXPECT_EQ(back.bgr, img.bgr);
}

TEST(ImageIo, JpegRoundTripIsClose) {
  // A smooth picture survives JPEG at quality 95 almost unchanged; channel order is preserved.
  Image img = Image::filled(64, 48);
  for (int y = 0; y < 48; ++y)
    for (int x = 0; x < 64; ++x) {
      uint8_t* p = img.pixel(x, y);
      p[0] = static_cast<uint8_t>(40 + 2 * x);
      p[1] = static_cast<uint8_t>(200 - 3 * y);
      p[2] = static_cast<uint8_t>(90 + x + y);
    }
  const auto bytes = kestrel::image::encode_jpeg(img, 95);
  const Image back = kestrel::image::decode_image(bytes.data(), bytes.size());
  ASSERT_EQ(back.bgr.size(), img.bgr.size());
  double sum = 0;
  for (size_t i = 0; i < img.bgr.size(); ++i) sum += std::abs(int(img.bgr[i]) - int(back.bgr[i]));
  EXPECT_LT(sum / img.bgr.size(), 1.5);
  const Image red = Image::filled(16, 16, 0, 0, 255);
  const auto rb = kestrel::image::encode_jpeg(red, 95);
  const Image r = kestrel::image::decode_image(rb.data(), rb.size());
  EXPECT_LT(r.pixel(8, 8)[0], 10);
  EXPECT_GT(r.pixel(8, 8)[2], 245);
}

TEST(ImageIo, WriteImageChoosesFormatByExtension) {
  const Image img = pattern(20, 10);
  for (const char* name : {"out.png", "out.PNG", "out.jpg", "out.jpeg"}) {
    const fs::path p = temp_path(name);
    kestrel::image::write_image(p.string(), img);
    const auto bytes = slurp(p);
    ASSERT_GT(bytes.size(), 8u);
    const bool png = std::string(name).find("png") != std::string::npos ||
                     std::string(name).find("PNG") != std::string::npos;
    EXPECT_EQ(bytes[0], png ? 0x89 : 0xFF) << name;
    const Image back = kestrel::image::read_image(p.string());
    EXPECT_EQ(back.width, 20);
    EXPECT_EQ(back.height, 10);
  }
  const std::string err = error_of([&] { kestrel::image::write_image(temp_path("out.bmp").string(), img); });
  EXPECT_NE(err.find("extension"), std::string::npos) << err;
}

TEST(ImageIo, PngVariantsBecomeBgrLikeCv2) {
  // 8-bit grey -> three equal channels.
  {
    const auto bytes = make_png(3, 1, PNG_COLOR_TYPE_GRAY, 8, {0, 128, 255});
    const Image img = kestrel::image::decode_image(bytes.data(), bytes.size());
    EXPECT_EQ(img.bgr, (std::vector<uint8_t>{0, 0, 0, 128, 128, 128, 255, 255, 255}));
  }
  // 1-bit grey expands to 0/255.
  {
    const auto bytes = make_png(8, 1, PNG_COLOR_TYPE_GRAY, 1, {0b10100000});
    const Image img = kestrel::image::decode_image(bytes.data(), bytes.size());
    ASSERT_EQ(img.width, 8);
    EXPECT_EQ(img.pixel(0, 0)[0], 255);
    EXPECT_EQ(img.pixel(1, 0)[1], 0);
    EXPECT_EQ(img.pixel(2, 0)[2], 255);
  }
  // RGBA: alpha dropped (not composited), RGB -> BGR.
  {
    const auto bytes = make_png(1, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, {10, 20, 30, 0});
    const Image img = kestrel::image::decode_image(bytes.data(), bytes.size());
    EXPECT_EQ(img.bgr, (std::vector<uint8_t>{30, 20, 10}));
  }
  // Grey + alpha.
  {
    const auto bytes = make_png(1, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, {77, 5});
    const Image img = kestrel::image::decode_image(bytes.data(), bytes.size());
    EXPECT_EQ(img.bgr, (std::vector<uint8_t>{77, 77, 77}));
  }
  // Palette with transparency: palette colour, transparency ignored.
  {
    const auto bytes = make_png(2, 1, PNG_COLOR_TYPE_PALETTE, 8, {1, 0}, {{1, 2, 3}, {200, 100, 50}}, {0, 128});
    const Image img = kestrel::image::decode_image(bytes.data(), bytes.size());
    EXPECT_EQ(img.bgr, (std::vector<uint8_t>{50, 100, 200, 3, 2, 1}));
  }
  // 16-bit RGB: the high byte (png_set_strip_16, as cv2 without IMREAD_ANYDEPTH).
  {
    const auto bytes = make_png(1, 1, PNG_COLOR_TYPE_RGB, 16, {0x12, 0xFF, 0x80, 0x7F, 0xFF, 0xFF});
    const Image img = kestrel::image::decode_image(bytes.data(), bytes.size());
    EXPECT_EQ(img.bgr, (std::vector<uint8_t>{0xFF, 0x80, 0x12}));
  }
  // 16-bit grey.
  {
    const auto bytes = make_png(1, 1, PNG_COLOR_TYPE_GRAY, 16, {0xAB, 0xCD});
    const Image img = kestrel::image::decode_image(bytes.data(), bytes.size());
    EXPECT_EQ(img.bgr, (std::vector<uint8_t>{0xAB, 0xAB, 0xAB}));
  }
}

TEST(ImageIo, GrayscaleAndCmykJpeg) {
  tjhandle enc = tjInitCompress();
  tjhandle dec = tjInitDecompress();
  // Greyscale JPEG -> B = G = R = the decoded grey value.
  {
    std::vector<uint8_t> grey(32 * 16);
    for (size_t i = 0; i < grey.size(); ++i) grey[i] = static_cast<uint8_t>(i * 3);
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    ASSERT_EQ(tjCompress2(enc, grey.data(), 32, 0, 16, TJPF_GRAY, &buf, &size, TJSAMP_GRAY, 90, 0), 0);
    std::vector<uint8_t> ref(32 * 16);
    ASSERT_EQ(tjDecompress2(dec, buf, size, ref.data(), 32, 0, 16, TJPF_GRAY, 0), 0);
    const Image img = kestrel::image::decode_image(buf, size);
    tjFree(buf);
    ASSERT_EQ(img.width, 32);
    for (int i = 0; i < 32 * 16; ++i)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(img.bgr[i * 3 + c], ref[i]) << i;
  }
  // CMYK (YCCK) JPEG -> OpenCV's inverted-CMYK conversion.
  {
    std::vector<uint8_t> cmyk(16 * 16 * 4);
    for (size_t i = 0; i < cmyk.size(); ++i) cmyk[i] = static_cast<uint8_t>(i * 13);
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    ASSERT_EQ(tjCompress2(enc, cmyk.data(), 16, 0, 16, TJPF_CMYK, &buf, &size, TJSAMP_444, 95, 0), 0);
    std::vector<uint8_t> ref(16 * 16 * 4);
    ASSERT_EQ(tjDecompress2(dec, buf, size, ref.data(), 16, 0, 16, TJPF_CMYK, 0), 0);
    const Image img = kestrel::image::decode_image(buf, size);
    tjFree(buf);
    for (int i = 0; i < 16 * 16; ++i) {
      const uint8_t* s = &ref[i * 4];
      const int k = s[3];
      EXPECT_EQ(img.bgr[i * 3 + 2], k - (((255 - s[0]) * k) >> 8));
      EXPECT_EQ(img.bgr[i * 3 + 1], k - (((255 - s[1]) * k) >> 8));
      EXPECT_EQ(img.bgr[i * 3 + 0], k - (((255 - s[2]) * k) >> 8));
    }
  }
  tjDestroy(enc);
  tjDestroy(dec);
}

// The mapping of each EXIF orientation on a 3x2 image whose pixels are numbered 0..5:
//   0 1 2
//   3 4 5
TEST(ImageIo, ApplyOrientationMatchesOpenCvTable) {
  Image img = Image::filled(3, 2);
  for (int i = 0; i < 6; ++i) img.bgr[i * 3] = static_cast<uint8_t>(i);
  auto ids = [](const Image& m) {
    std::vector<int> v;
    for (int i = 0; i < m.width * m.height; ++i) v.push_back(m.bgr[i * 3]);
    return v;
  };
  using V = std::vector<int>;
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 1)), (V{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 2)), (V{2, 1, 0, 5, 4, 3}));  // mirror
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 3)), (V{5, 4, 3, 2, 1, 0}));  // 180
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 4)), (V{3, 4, 5, 0, 1, 2}));  // flip vertical
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 5)), (V{0, 3, 1, 4, 2, 5}));  // transpose
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 6)), (V{3, 0, 4, 1, 5, 2}));  // 90 clockwise
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 7)), (V{5, 2, 4, 1, 3, 0}));  // transverse
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 8)), (V{2, 5, 1, 4, 0, 3}));  // 90 counter-clockwise
  EXPECT_EQ(kestrel::image::apply_orientation(img, 6).width, 2);
  EXPECT_EQ(ids(kestrel::image::apply_orientation(img, 9)), (V{0, 1, 2, 3, 4, 5}));  // invalid: unchanged
}

TEST(ImageIo, JpegExifOrientationIsApplied) {
  const Image img = pattern(40, 24);
  const auto plain = kestrel::image::encode_jpeg(img, 90);
  const Image base = kestrel::image::decode_image(plain.data(), plain.size());
  for (int o = 1; o <= 8; ++o) {
    const auto bytes = with_orientation(plain, o);
    const Image got = kestrel::image::decode_image(bytes.data(), bytes.size());
    const Image want = kestrel::image::apply_orientation(base, o);
    EXPECT_EQ(got.width, want.width) << "orientation " << o;
    EXPECT_EQ(got.height, want.height) << "orientation " << o;
    EXPECT_EQ(got.bgr, want.bgr) << "orientation " << o;
    const fs::path p = temp_path("exif" + std::to_string(o) + ".jpg");
    spit(p, bytes);
    const auto size = kestrel::image::probe_size(p.string());
    EXPECT_EQ(size.width, o >= 5 ? 24 : 40) << "orientation " << o;
    EXPECT_EQ(size.height, o >= 5 ? 40 : 24) << "orientation " << o;
  }
}

TEST(ImageIo, UnreadableFilesThrowKestrelError) {
  const fs::path empty = temp_path("empty.jpg");
  spit(empty, {});
  EXPECT_NE(error_of([&] { kestrel::image::read_image(empty.string()); }).find("empty"), std::string::npos);

  const fs::path missing = temp_path("does_not_exist.jpg");
  EXPECT_NE(error_of([&] { kestrel::image::read_image(missing.string()); }).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of([&] { kestrel::image::probe_size(missing.string()); }).find("cannot open"), std::string::npos);
  EXPECT_NE(error_of([&] { kestrel::image::read_image(::testing::TempDir()); }).find("directory"), std::string::npos);

  std::mt19937 rng(1);
  std::vector<uint8_t> noise(5000);
  for (auto& b : noise) b = static_cast<uint8_t>(rng());
  noise[0] = 'x';
  const fs::path junk = temp_path("junk.png");
  spit(junk, noise);
  const std::string junk_err = error_of([&] { kestrel::image::read_image(junk.string()); });
  EXPECT_NE(junk_err.find("not a JPEG or PNG"), std::string::npos) << junk_err;
  EXPECT_NE(junk_err.find(junk.string()), std::string::npos) << "message names the file: " << junk_err;

  // JPEG and PNG signatures followed by garbage.
  std::vector<uint8_t> fake_jpeg = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10};
  fake_jpeg.insert(fake_jpeg.end(), noise.begin(), noise.begin() + 100);
  EXPECT_NE(error_of([&] { kestrel::image::decode_image(fake_jpeg.data(), fake_jpeg.size()); }), "NO ERROR");
  std::vector<uint8_t> fake_png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  fake_png.insert(fake_png.end(), noise.begin(), noise.begin() + 100);
  EXPECT_NE(error_of([&] { kestrel::image::decode_image(fake_png.data(), fake_png.size()); }).find("PNG"),
            std::string::npos);

  // Truncated PNG (image data cut) and a PNG with a flipped byte in IDAT (CRC error).
  const auto png = kestrel::image::encode_png(pattern(50, 40));
  std::vector<uint8_t> cut(png.begin(), png.begin() + png.size() / 2);
  EXPECT_NE(error_of([&] { kestrel::image::decode_image(cut.data(), cut.size()); }).find("truncated"),
            std::string::npos);
  std::vector<uint8_t> flipped = png;
  flipped[flipped.size() / 2] ^= 0x55;
  EXPECT_NE(error_of([&] { kestrel::image::decode_image(flipped.data(), flipped.size()); }), "NO ERROR");
}

TEST(ImageIo, TruncatedJpegIsAnErrorNotAGreyImage) {
  const auto jpeg = kestrel::image::encode_jpeg(pattern(64, 64), 90);
  for (size_t keep : {jpeg.size() / 2, jpeg.size() - 10, size_t{20}}) {
    std::vector<uint8_t> cut(jpeg.begin(), jpeg.begin() + keep);
    const std::string err = error_of([&] { kestrel::image::decode_image(cut.data(), cut.size(), "cut.jpg"); });
    EXPECT_NE(err.find("cut.jpg"), std::string::npos) << "keep " << keep << ": " << err;
  }
  // The header probe only needs the frame header: it fails on a file cut before it.
  std::vector<uint8_t> head(jpeg.begin(), jpeg.begin() + 20);
  const fs::path p = temp_path("head_only.jpg");
  spit(p, head);
  EXPECT_NE(error_of([&] { kestrel::image::probe_size(p.string()); }).find("truncated"), std::string::npos);
}

TEST(ImageIo, TruncatedCocoJpegIsAnError) {
  KESTREL_REQUIRE_DATA("coco-val/images/000000037777.jpg");
  const auto bytes = slurp(kestrel::test::data_path("coco-val/images/000000037777.jpg"));
  std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + bytes.size() * 2 / 3);
  const std::string err = error_of([&] { kestrel::image::decode_image(cut.data(), cut.size(), "37777-cut"); });
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
}
