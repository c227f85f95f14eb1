// Reading, probing and writing image files; the codecs live in jpeg_codec.cpp and png_codec.cpp.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <memory>

#include "image_internal.h"
#include "kestrel/error.h"
#include "util/file_io.h"

namespace kestrel::image {

namespace detail {

void check_dimensions(int width, int height, const std::string& name) {
  if (width <= 0 || height <= 0 || static_cast<int64_t>(width) * height > kMaxPixels)
    fail(name, ": image size ", width, "x", height, " is empty or above 2^30 pixels");
}

bool FileSource::skip(size_t n) {
  // Seek only within the file: fseek past the end succeeds, so check against the size.
  const long pos = std::ftell(f_);
  if (pos < 0 || std::fseek(f_, 0, SEEK_END) != 0) return false;
  const long end = std::ftell(f_);
  if (end < 0 || static_cast<size_t>(end - pos) < n) return false;
  return std::fseek(f_, pos + static_cast<long>(n), SEEK_SET) == 0;
}

bool is_jpeg(const uint8_t* d, size_t n) { return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF; }

bool is_png(const uint8_t* d, size_t n) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return n >= 8 && std::memcmp(d, sig, 8) == 0;
}

}  // namespace detail

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_file(const std::string& path, const char* mode) {
  File f(std::fopen(path.c_str(), mode));
  if (!f) fail(path, ": cannot open (", std::strerror(errno), ")");
  return f;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, not an image");
  File f = open_file(path, "rb");
  std::vector<uint8_t> data;
  uint8_t chunk[1 << 16];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof(chunk), f.get())) > 0) data.insert(data.end(), chunk, chunk + n);
  if (std::ferror(f.get())) fail(path, ": read error");
  return data;
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

}  // namespace

Image Image::filled(int w, int h, uint8_t b, uint8_t g, uint8_t r) {
  KESTREL_CHECK(w >= 0 && h >= 0, "image size must not be negative: ", w, "x", h);
  Image img{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (size_t i = 0; i < img.bgr.size(); i += 3) {
    img.bgr[i] = b;
    img.bgr[i + 1] = g;
    img.bgr[i + 2] = r;
  }
  return img;
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  if (size == 0) fail(name, ": empty file");
  if (detail::is_jpeg(data, size)) return detail::decode_jpeg(data, size, name);
  if (detail::is_png(data, size)) return detail::decode_png(data, size, name);
  fail(name, ": not a JPEG or PNG file");
}

Image read_image(const std::string& path) {
  const std::vector<uint8_t> data = read_file(path);
  return decode_image(data.data(), data.size(), path);
}

ImageSize probe_size(const std::string& path) {
  File f = open_file(path, "rb");
  uint8_t head[24];
  const size_t n = std::fread(head, 1, sizeof(head), f.get());
  if (n == 0) fail(path, ": empty file");
  if (detail::is_png(head, n)) {
    // The IHDR chunk must come first: length 13, "IHDR", width, height (big-endian).
    if (n < 24 || std::memcmp(head + 12, "IHDR", 4) != 0) fail(path, ": truncated or corrupt PNG header");
    auto be32 = [](const uint8_t* p) { return (uint32_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3]; };
    const uint32_t w = be32(head + 16), h = be32(head + 20);
    if (w == 0 || h == 0 || w > 0x7fffffff || h > 0x7fffffff) fail(path, ": corrupt PNG header (size ", w, "x", h, ")");
    return {static_cast<int>(w), static_cast<int>(h)};
  }
  if (detail::is_jpeg(head, n)) {
    std::rewind(f.get());
    detail::FileSource src(f.get());
    const detail::JpegHeader h = detail::read_jpeg_header(src, path);
    if (h.orientation >= 5) return {h.height, h.width};  // read_image transposes these
    return {h.width, h.height};
  }
  fail(path, ": not a JPEG or PNG file");
}

void write_image(const std::string& path, const Image& img, int jpeg_quality) {
  const std::string ext = lower_extension(path);
  std::vector<uint8_t> bytes;
  if (ext == ".jpg" || ext == ".jpeg")
    bytes = encode_jpeg(img, jpeg_quality);
  else if (ext == ".png")
    bytes = encode_png(img);
  else
    fail(path, ": cannot tell the image format from the extension (use .jpg, .jpeg or .png)");
  util::write_file(path, bytes.data(), bytes.size());
}

}  // namespace kestrel::image
