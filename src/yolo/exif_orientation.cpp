// EXIF orientation: reading the tag (libexif) and applying it like OpenCV's imread does.
#include <libexif/exif-data.h>

#include <memory>

#include "image_internal.h"
#include "kestrel/error.h"

namespace kestrel::image {

namespace detail {

int exif_orientation_from_app1(const uint8_t* payload, size_t size) {
  if (size < 6 || std::memcmp(payload, "Exif\0\0", 6) != 0) return 0;
  std::unique_ptr<ExifData, decltype(&exif_data_unref)> ed(exif_data_new(), &exif_data_unref);
  if (!ed) return 0;
  // FOLLOW_SPECIFICATION would "fix" the data by inventing mandatory tags; we only want to read.
  exif_data_unset_option(ed.get(), EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(ed.get(), payload, static_cast<unsigned int>(size));
  // OpenCV reads the tag from IFD0 (the main image), not from the thumbnail's IFD1.
  ExifEntry* e = exif_content_get_entry(ed->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
  if (!e || !e->data || e->components < 1) return 0;
  const ExifByteOrder order = exif_data_get_byte_order(ed.get());
  int v = 0;
  if (e->format == EXIF_FORMAT_SHORT && e->size >= 2)
    v = exif_get_short(e->data, order);
  else if (e->format == EXIF_FORMAT_LONG && e->size >= 4)
    v = static_cast<int>(exif_get_long(e->data, order));
  return (v >= 1 && v <= 8) ? v : 0;
}

}  // namespace detail

Image apply_orientation(const Image& img, int orientation) {
  if (orientation < 2 || orientation > 8) return img;
  // Orientations 5..8 transpose; then x and/or y are mirrored. This is OpenCV's table
  // (2 flip(1), 3 flip(-1), 4 flip(0), 5 transpose, 6 transpose+flip(1), 7 transpose+flip(-1),
  // 8 transpose+flip(0)) written as one index mapping.
  const bool transpose = orientation >= 5;
  bool flip_x = false, flip_y = false;
  switch (orientation) {
    case 2: flip_x = true; break;
    case 3: flip_x = flip_y = true; break;
    case 4: flip_y = true; break;
    case 5: break;
    case 6: flip_x = true; break;
    case 7: flip_x = flip_y = true; break;
    case 8: flip_y = true; break;
  }
  Image out;
  out.width = transpose ? img.height : img.width;
  out.height = transpose ? img.width : img.height;
  out.bgr.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    const int ty = flip_y ? out.height - 1 - y : y;
    uint8_t* dst = out.pixel(0, y);
    for (int x = 0; x < out.width; ++x, dst += 3) {
      const int tx = flip_x ? out.width - 1 - x : x;
      const uint8_t* s = transpose ? img.pixel(ty, tx) : img.pixel(tx, ty);
      dst[0] = s[0];
      dst[1] = s[1];
      dst[2] = s[2];
    }
  }
  return out;
}

}  // namespace kestrel::image
