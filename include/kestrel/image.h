#pragma once
// 8-bit BGR images in memory, and reading/writing JPEG and PNG files.
//
// Decoding follows cv2.imread(path, IMREAD_COLOR) because accuracy is measured against Ultralytics,
// which reads images with OpenCV: the result is always 3-channel 8-bit BGR (grayscale replicated,
// alpha dropped, palette expanded, 16-bit reduced to the high byte, CMYK JPEG converted like
// OpenCV), and a JPEG's EXIF orientation is applied. Decoding uses libjpeg-turbo with its default
// (accurate integer) IDCT and fancy upsampling, the same settings OpenCV's bundled libjpeg-turbo uses,
// so pixels agree with cv2 to the last bit for ordinary JPEGs.
//
// Every failure a file can cause (missing, unreadable, unsupported format, corrupt, truncated) is a
// kestrel::Error with a one-line message naming the file, so batch callers can count and skip it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kestrel::image {

// Interleaved BGR, row-major, no row padding: pixel (x, y) starts at bgr[(y * width + x) * 3].
// An aggregate, so `Image{w, h, std::move(bytes)}` works.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> bgr;

  // A width x height image filled with one BGR colour (black by default).
  static Image filled(int w, int h, uint8_t b = 0, uint8_t g = 0, uint8_t r = 0);

  bool empty() const { return width <= 0 || height <= 0; }
  uint8_t* pixel(int x, int y) { return bgr.data() + (static_cast<size_t>(y) * width + x) * 3; }
  const uint8_t* pixel(int x, int y) const { return bgr.data() + (static_cast<size_t>(y) * width + x) * 3; }
};

struct ImageSize {
  int width = 0;
  int height = 0;
};

// Decodes a JPEG or PNG file (format chosen by content, not by extension).
Image read_image(const std::string& path);

// Same, from bytes in memory; `name` only appears in error messages.
Image decode_image(const uint8_t* data, size_t size, const std::string& name = "<memory>");

// The size read_image would return (EXIF rotation included), reading only the file's headers.
// Supports `auto [w, h] = probe_size(path);`.
ImageSize probe_size(const std::string& path);

// Writes JPEG (.jpg/.jpeg, quality 1..100, 4:2:0 like cv2.imwrite's default) or PNG (.png),
// chosen by the extension (case-insensitive).
void write_image(const std::string& path, const Image& img, int jpeg_quality = 95);

// The images (.jpg, .jpeg, .png, any case) directly in folder `dir`, sorted by path. Symlinks are
// followed; an entry that cannot be used (dangling or looping symlink, unreadable file) is left out
// with one line naming it in `problems` (when given). Throws only when `dir` cannot be listed.
std::vector<std::string> folder_images(const std::string& dir, std::vector<std::string>* problems = nullptr);

std::vector<uint8_t> encode_jpeg(const Image& img, int quality = 95);
std::vector<uint8_t> encode_png(const Image& img);

// EXIF orientation (1..8, TIFF convention) applied to an image the way OpenCV does after decoding;
// values outside 1..8 leave the image unchanged.
Image apply_orientation(const Image& img, int orientation);

}  // namespace kestrel::image
