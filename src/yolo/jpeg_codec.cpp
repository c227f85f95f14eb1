// JPEG decode/encode with libjpeg-turbo's TurboJPEG API, matching cv2.imread's output.
#include <turbojpeg.h>

#include <memory>
#include <vector>

#include "image_internal.h"
#include "kestrel/error.h"

namespace kestrel::image::detail {

namespace {

struct TjDeleter {
  void operator()(void* h) const {
    if (h) tjDestroy(h);
  }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

bool is_sof_marker(uint8_t m) {
  // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC), which share the range.
  return m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
}

uint8_t next_byte(ByteSource& src, const std::string& name) {
  uint8_t c;
  if (!src.read(&c, 1)) fail(name, ": truncated JPEG (no frame header)");
  return c;
}

// libjpeg reports recoverable damage as warnings and fills what is missing with grey. cv2 shrugs
// them off; we refuse them, because a grey half-image silently lowers mAP. The one exception is
// junk between markers, which is common in camera files and changes no pixel.
bool is_harmless_warning(const char* msg) {
  return msg && std::strstr(msg, "extraneous bytes before marker") != nullptr;
}

}  // namespace

JpegHeader read_jpeg_header(ByteSource& src, const std::string& name) {
  uint8_t soi[2];
  if (!src.read(soi, 2) || soi[0] != 0xFF || soi[1] != 0xD8) fail(name, ": not a JPEG file");
  JpegHeader h;
  bool seen_app1 = false;
  for (;;) {
    uint8_t c = next_byte(src, name);
    while (c != 0xFF) c = next_byte(src, name);  // libjpeg also skips junk between segments
    while (c == 0xFF) c = next_byte(src, name);  // fill bytes
    const uint8_t marker = c;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length field
    if (marker == 0xD8 || marker == 0xD9 || marker == 0xDA)
      fail(name, ": corrupt JPEG (no frame header before marker 0x", std::hex, int{marker}, ")");
    uint8_t len_bytes[2];
    if (!src.read(len_bytes, 2)) fail(name, ": truncated JPEG header");
    const size_t len = (size_t{len_bytes[0]} << 8) | len_bytes[1];
    if (len < 2) fail(name, ": corrupt JPEG (bad segment length)");
    const size_t n = len - 2;
    if (is_sof_marker(marker)) {
      uint8_t sof[5];
      if (n < 5 || !src.read(sof, 5)) fail(name, ": truncated JPEG frame header");
      h.height = (sof[1] << 8) | sof[2];
      h.width = (sof[3] << 8) | sof[4];
      if (h.width == 0 || h.height == 0) fail(name, ": JPEG frame header gives a zero image size");
      return h;
    }
    if (marker == 0xE1 && !seen_app1) {
      // cv2 looks at the first APP1 segment only (and finds no orientation if that one is XMP).
      seen_app1 = true;
      std::vector<uint8_t> payload(n);
      if (!src.read(payload.data(), n)) fail(name, ": truncated JPEG header");
      h.orientation = exif_orientation_from_app1(payload.data(), payload.size());
      continue;
    }
    if (!src.skip(n)) fail(name, ": truncated JPEG header");
  }
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  MemorySource src(data, size);
  const JpegHeader hdr = read_jpeg_header(src, name);

  TjHandle tj(tjInitDecompress());
  if (!tj) fail("cannot initialise the JPEG decoder: ", tjGetErrorStr2(nullptr));
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.get(), data, static_cast<unsigned long>(size), &w, &h, &subsamp, &colorspace) != 0)
    fail(name, ": corrupt JPEG header (", tjGetErrorStr2(tj.get()), ")");
  check_dimensions(w, h, name);

  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  std::vector<uint8_t> pixels(static_cast<size_t>(w) * h * (cmyk ? 4 : 3));
  // Flags 0 = accurate integer IDCT (JDCT_ISLOW) and fancy upsampling: libjpeg's defaults, which
  // cv2 keeps. TJFLAG_ACCURATEDCT decodes identically (ISLOW is already the default).
  const int rc = tjDecompress2(tj.get(), data, static_cast<unsigned long>(size), pixels.data(), w, 0, h,
                               cmyk ? TJPF_CMYK : TJPF_BGR, 0);
  if (rc != 0) {
    const char* msg = tjGetErrorStr2(tj.get());
    if (tjGetErrorCode(tj.get()) != TJERR_WARNING || !is_harmless_warning(msg))
      fail(name, ": corrupt or truncated JPEG (", msg ? msg : "unknown error", ")");
  }

  Image img;
  img.width = w;
  img.height = h;
  if (!cmyk) {
    img.bgr = std::move(pixels);
  } else {
    // OpenCV's CMYK->BGR for the (Adobe-inverted) CMYK libjpeg returns.
    img.bgr.resize(static_cast<size_t>(w) * h * 3);
    const uint8_t* s = pixels.data();
    uint8_t* d = img.bgr.data();
    for (size_t i = 0, n = static_cast<size_t>(w) * h; i < n; ++i, s += 4, d += 3) {
      const int k = s[3];
      d[2] = static_cast<uint8_t>(k - (((255 - s[0]) * k) >> 8));
      d[1] = static_cast<uint8_t>(k - (((255 - s[1]) * k) >> 8));
      d[0] = static_cast<uint8_t>(k - (((255 - s[2]) * k) >> 8));
    }
  }
  if (hdr.orientation > 1) img = apply_orientation(img, hdr.orientation);
  return img;
}

}  // namespace kestrel::image::detail

namespace kestrel::image {

std::vector<uint8_t> encode_jpeg(const Image& img, int quality) {
  KESTREL_CHECK(!img.empty() && img.bgr.size() == static_cast<size_t>(img.width) * img.height * 3,
                "encode_jpeg: image is empty or its buffer does not match ", img.width, "x", img.height);
  KESTREL_CHECK(quality >= 1 && quality <= 100, "JPEG quality must be in 1..100, got ", quality);
  detail::TjHandle tj(tjInitCompress());
  if (!tj) fail("cannot initialise the JPEG encoder: ", tjGetErrorStr2(nullptr));
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  // 4:2:0 and the accurate DCT: what cv2.imwrite does by default.
  if (tjCompress2(tj.get(), img.bgr.data(), img.width, 0, img.height, TJPF_BGR, &buf, &size, TJSAMP_420, quality,
                  TJFLAG_ACCURATEDCT) != 0) {
    std::string msg = tjGetErrorStr2(tj.get());
    tjFree(buf);
    fail("JPEG encoding failed: ", msg);
  }
  std::vector<uint8_t> out(buf, buf + size);
  tjFree(buf);
  return out;
}

}  // namespace kestrel::image
