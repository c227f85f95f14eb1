#pragma once
// Pieces shared by the image codec files of kestrel_yolo (not installed).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "kestrel/image.h"

namespace kestrel::image::detail {

// cv2 refuses images above CV_IO_MAX_IMAGE_PIXELS (2^30) pixels; so do we, before allocating.
constexpr int64_t kMaxPixels = int64_t{1} << 30;
void check_dimensions(int width, int height, const std::string& name);

// A forward-only byte source, so the JPEG header walk serves both probe_size (file, reads a few KB)
// and decoding (memory).
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual bool read(uint8_t* dst, size_t n) = 0;
  virtual bool skip(size_t n) = 0;
};

class MemorySource final : public ByteSource {
 public:
  MemorySource(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool read(uint8_t* dst, size_t n) override {
    if (size_ - pos_ < n) return false;
    std::memcpy(dst, data_ + pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(size_t n) override {
    if (size_ - pos_ < n) return false;
    pos_ += n;
    return true;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

class FileSource final : public ByteSource {
 public:
  explicit FileSource(std::FILE* f) : f_(f) {}
  bool read(uint8_t* dst, size_t n) override { return std::fread(dst, 1, n, f_) == n; }
  bool skip(size_t n) override;

 private:
  std::FILE* f_;
};

// What the JPEG markers before the first scan say: frame size and EXIF orientation (0 when absent).
struct JpegHeader {
  int width = 0;
  int height = 0;
  int orientation = 0;
};
// Walks the markers after SOI up to the frame header; throws kestrel::Error when the stream ends
// early or is not a JPEG.
JpegHeader read_jpeg_header(ByteSource& src, const std::string& name);

// Orientation (1..8) from an APP1 payload that starts with "Exif\0\0"; 0 when absent or unreadable.
int exif_orientation_from_app1(const uint8_t* payload, size_t size);

bool is_jpeg(const uint8_t* data, size_t size);
bool is_png(const uint8_t* data, size_t size);

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);
Image decode_png(const uint8_t* data, size_t size, const std::string& name);

}  // namespace kestrel::image::detail
