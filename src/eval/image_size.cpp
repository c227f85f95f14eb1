// Image size from the file header, without decoding: YOLO labels are normalized, so loading a dataset
// needs every labelled image's size, and decoding thousands of JPEGs just for that would dominate the
// load. Reads only what is needed (seeking over JPEG segments), and checks every bound.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <utility>
#include <fstream>
#include <vector>

#include "kestrel/eval.h"

namespace kestrel::eval {

namespace {

uint32_t be16(const unsigned char* p) { return (uint32_t(p[0]) << 8) | p[1]; }
uint32_t be32(const unsigned char* p) { return (be16(p) << 16) | be16(p + 2); }
uint32_t le16(const unsigned char* p) { return (uint32_t(p[1]) << 8) | p[0]; }
uint32_t le32(const unsigned char* p) { return (le16(p + 2) << 16) | le16(p); }

// EXIF orientation (tag 0x0112 of IFD0) from an APP1 payload; 1 when absent or unreadable.
int exif_orientation(const std::vector<unsigned char>& d) {
  static const unsigned char kExif[6] = {'E', 'x', 'i', 'f', 0, 0};
  if (d.size() < 14 || !std::equal(kExif, kExif + 6, d.begin())) return 1;
  const unsigned char* t = d.data() + 6;  // TIFF header
  const size_t n = d.size() - 6;
  bool le;
  if (t[0] == 'I' && t[1] == 'I') le = true;
  else if (t[0] == 'M' && t[1] == 'M') le = false;
  else return 1;
  auto u16 = [&](size_t off) { return le ? le16(t + off) : be16(t + off); };
  auto u32 = [&](size_t off) { return le ? le32(t + off) : be32(t + off); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd + 2 > n) return 1;
  const size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e + 12 > n) break;
    if (u16(e) == 0x0112 && u16(e + 2) == 3) {  // SHORT
      const int o = static_cast<int>(u16(e + 8));
      return o >= 1 && o <= 8 ? o : 1;
    }
  }
  return 1;
}

std::pair<int, int> jpeg_size(std::ifstream& f, const std::string& path) {
  f.seekg(2);
  int orientation = 1;
  auto get = [&]() -> int {
    const int c = f.get();
    if (c == EOF) fail(path, ": truncated JPEG (no frame header found)");
    return c;
  };
  for (;;) {
    // Markers are 0xFF xx, possibly preceded by fill bytes; stray bytes between segments are skipped
    // the way libjpeg does (with a warning there).
    int c = get();
    while (c != 0xFF) c = get();
    while (c == 0xFF) c = get();
    const int marker = c;
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (marker == 0xD9 || marker == 0xDA) fail(path, ": JPEG has no frame header before its image data");
    unsigned char lenb[2];
    if (!f.read(reinterpret_cast<char*>(lenb), 2)) fail(path, ": truncated JPEG");
    const uint32_t len = be16(lenb);
    if (len < 2) fail(path, ": corrupt JPEG segment length");
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      unsigned char s[5];
      if (len < 7 || !f.read(reinterpret_cast<char*>(s), 5)) fail(path, ": truncated JPEG frame header");
      int h = static_cast<int>(be16(s + 1)), w = static_cast<int>(be16(s + 3));
      if (w == 0 || h == 0) fail(path, ": JPEG frame header has no size");
      // Orientations 5..8 rotate by 90 degrees: the decoded (upright) image has width and height swapped.
      if (orientation >= 5) std::swap(w, h);
      return {w, h};
    }
    if (marker == 0xE1 && orientation == 1) {
      std::vector<unsigned char> d(len - 2);
      if (!f.read(reinterpret_cast<char*>(d.data()), static_cast<std::streamsize>(d.size())))
        fail(path, ": truncated JPEG");
      orientation = exif_orientation(d);
      continue;
    }
    f.seekg(len - 2, std::ios::cur);
    if (!f) fail(path, ": truncated JPEG");
  }
}

}  // namespace

std::pair<int, int> probe_image_size(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open image ", path);
  unsigned char h[26] = {};
  f.read(reinterpret_cast<char*>(h), sizeof h);
  const auto n = f.gcount();
  f.clear();
  if (n >= 3 && h[0] == 0xFF && h[1] == 0xD8 && h[2] == 0xFF) return jpeg_size(f, path);
  static const unsigned char kPng[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n >= 24 && std::equal(kPng, kPng + 8, h)) {
    if (!(h[12] == 'I' && h[13] == 'H' && h[14] == 'D' && h[15] == 'R')) fail(path, ": corrupt PNG (no IHDR)");
    const uint32_t w = be32(h + 16), hh = be32(h + 20);
    if (w == 0 || hh == 0 || w > 0x7fffffff || hh > 0x7fffffff) fail(path, ": corrupt PNG size");
    return {static_cast<int>(w), static_cast<int>(hh)};
  }
  if (n >= 26 && h[0] == 'B' && h[1] == 'M') {
    const uint32_t dib = le32(h + 14);
    int w, hh;
    if (dib == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
      w = static_cast<int>(le16(h + 18));
      hh = static_cast<int>(le16(h + 20));
    } else {  // BITMAPINFOHEADER and later: signed 32-bit, negative height = top-down rows
      w = static_cast<int32_t>(le32(h + 18));
      const int32_t sh = static_cast<int32_t>(le32(h + 22));
      hh = sh == INT32_MIN ? 0 : std::abs(sh);
    }
    if (w <= 0 || hh <= 0) fail(path, ": corrupt BMP size");
    return {w, hh};
  }
  fail(path, ": cannot read the image size (the built-in probe reads JPEG, PNG and BMP headers; "
             "other formats need the decoder's size probe)");
}

}  // namespace kestrel::eval
