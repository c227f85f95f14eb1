// PNG decode/encode with libpng, applying the same transforms cv2.imread(IMREAD_COLOR) asks for.
#include <png.h>

#include <csetjmp>
#include <vector>

#include "image_internal.h"
#include "kestrel/error.h"

namespace kestrel::image::detail {

namespace {

// libpng reports errors through a callback that must not return; we record the message and
// longjmp back (an exception must not cross libpng's C frames).
struct PngErrorState {
  char message[256] = "unknown error";
};

void png_error_fn(png_structp png, png_const_charp msg) {
  auto* st = static_cast<PngErrorState*>(png_get_error_ptr(png));
  if (st) std::snprintf(st->message, sizeof(st->message), "%s", msg ? msg : "unknown error");
  png_longjmp(png, 1);
}

void png_warning_fn(png_structp, png_const_charp) {}  // e.g. "iCCP: known incorrect sRGB profile"

struct PngReader {
  const uint8_t* data;
  size_t size;
  size_t pos;
};

void png_read_fn(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngReader*>(png_get_io_ptr(png));
  if (r->size - r->pos < n) png_error(png, "file is truncated");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

void png_write_fn(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

void png_flush_fn(png_structp) {}

// The setjmp frame holds only the libpng handles (set before setjmp, never changed after) and
// writes its results through references to the caller's objects, so nothing it leaves behind has an
// indeterminate value after a longjmp.
enum class PngStatus { Ok, Error, TooLarge, BadLayout };

PngStatus png_decode_into(PngReader& reader, PngErrorState& err, Image& img, std::vector<png_bytep>& rows,
                          int& color_type_out, int& bit_depth_out) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
  if (!png) return PngStatus::Error;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return PngStatus::Error;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return PngStatus::Error;
  }
  png_set_read_fn(png, &reader, png_read_fn);
  png_read_info(png, info);
  png_uint_32 w = 0, h = 0;
  int bit_depth = 0, color_type = 0;
  png_get_IHDR(png, info, &w, &h, &bit_depth, &color_type, nullptr, nullptr, nullptr);
  color_type_out = color_type;
  bit_depth_out = bit_depth;
  if (w == 0 || h == 0 || static_cast<int64_t>(w) * h > kMaxPixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    return PngStatus::TooLarge;
  }

  // cv2's transform list for an 8-bit 3-channel result: high byte of 16-bit samples, drop alpha
  // (palette transparency is expanded to alpha first, then dropped), expand palette and low-bit
  // grey, grey -> three equal channels, RGB -> BGR. No gamma or colour management.
  if (bit_depth == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (color_type & PNG_COLOR_MASK_COLOR)
    png_set_bgr(png);
  else
    png_set_gray_to_rgb(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != static_cast<size_t>(w) * 3) {
    png_destroy_read_struct(&png, &info, nullptr);
    return PngStatus::BadLayout;
  }
  img.width = static_cast<int>(w);
  img.height = static_cast<int>(h);
  img.bgr.resize(static_cast<size_t>(w) * h * 3);
  rows.resize(h);
  for (png_uint_32 y = 0; y < h; ++y) rows[y] = img.bgr.data() + static_cast<size_t>(y) * w * 3;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return PngStatus::Ok;
}

PngStatus png_encode_into(const Image& img, PngErrorState& err, std::vector<png_bytep>& rows,
                          std::vector<uint8_t>& out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &err, png_error_fn, png_warning_fn);
  if (!png) return PngStatus::Error;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_write_struct(&png, nullptr);
    return PngStatus::Error;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return PngStatus::Error;
  }
  png_set_write_fn(png, &out, png_write_fn, png_flush_fn);
  png_set_IHDR(png, info, static_cast<png_uint_32>(img.width), static_cast<png_uint_32>(img.height), 8,
               PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(png, 3);  // annotated output: speed matters more than the last few %
  png_write_info(png, info);
  png_set_bgr(png);
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return PngStatus::Ok;
}

}  // namespace

Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngErrorState err;
  PngReader reader{data, size, 0};
  Image img;
  std::vector<png_bytep> rows;
  int color_type = 0, bit_depth = 0;
  switch (png_decode_into(reader, err, img, rows, color_type, bit_depth)) {
    case PngStatus::Ok: return img;
    case PngStatus::TooLarge: fail(name, ": PNG image size is zero or above 2^30 pixels");
    case PngStatus::BadLayout:
      fail(name, ": unsupported PNG layout (colour type ", color_type, ", bit depth ", bit_depth, ")");
    case PngStatus::Error: break;
  }
  fail(name, ": corrupt or truncated PNG (", err.message, ")");
}

}  // namespace kestrel::image::detail

namespace kestrel::image {

std::vector<uint8_t> encode_png(const Image& img) {
  KESTREL_CHECK(!img.empty() && img.bgr.size() == static_cast<size_t>(img.width) * img.height * 3,
                "encode_png: image is empty or its buffer does not match ", img.width, "x", img.height);
  detail::PngErrorState err;
  std::vector<uint8_t> out;
  std::vector<png_bytep> rows(img.height);
  for (int y = 0; y < img.height; ++y)
    rows[y] = const_cast<png_bytep>(img.bgr.data() + static_cast<size_t>(y) * img.width * 3);
  if (detail::png_encode_into(img, err, rows, out) != detail::PngStatus::Ok) fail("PNG encoding failed: ", err.message);
  return out;
}

}  // namespace kestrel::image
