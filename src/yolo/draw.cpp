// Box + label annotation, sized like Ultralytics' Annotator, text rendered with FreeType, or with the
// built-in bitmap font (fallback_font.inc) where no TrueType font is installed.
#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "kestrel/error.h"
#include "kestrel/yolo.h"

namespace kestrel::yolo {

namespace {

using image::Image;
using Color = std::array<uint8_t, 3>;  // B, G, R

// Ultralytics' Colors() palette (RGB hex), cycled by class index.
constexpr uint32_t kPalette[20] = {0x042AFF, 0x0BDBEB, 0xF3F3F3, 0x00DFB7, 0x111F68, 0xFF6FDD, 0xFF444F,
                                   0xCCED00, 0x00F344, 0xBD00FF, 0x00B4FF, 0xDD00BA, 0x00FFFF, 0x26C000,
                                   0x01FFB3, 0x7D24FF, 0x7B0068, 0xFF1B6C, 0xFC6D2F, 0xA2FF0B};

struct FallbackGlyph {
  unsigned cp;
  int advance, left, top;
  unsigned width, rows;
  const char* coverage;  // rows x width hex digits
};
#include "fallback_font.inc"

// One rendered glyph: coverage 0..255, its origin offset and advance in pixels.
struct Glyph {
  int left = 0, top = 0, advance = 0, width = 0, rows = 0;
  std::vector<uint8_t> alpha;
};

// The label font: a TrueType face when one loads, else the built-in bitmap font scaled to the size.
class LabelFont {
 public:
  LabelFont(const DrawOptions& opts, int px) {
    std::vector<std::string> candidates;
    if (!opts.font_path.empty()) {
      candidates.push_back(opts.font_path);  // an explicit choice is not silently replaced
    } else {
      if (const char* env = std::getenv("KESTREL_FONT"); env && *env) candidates.emplace_back(env);
      candidates.emplace_back("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");  // Debian/Ubuntu
      candidates.emplace_back("/usr/share/fonts/TTF/DejaVuSans.ttf");              // Arch
      candidates.emplace_back("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf"); // Fedora
    }
    // "builtin" (font_path or $KESTREL_FONT) asks for the built-in font: the same pixels on every machine.
    const bool builtin_asked = opts.font_path == "builtin" || (!candidates.empty() && candidates.front() == "builtin");
    if (!builtin_asked && FT_Init_FreeType(&lib_) == 0) {
      for (const std::string& path : candidates) {
        if (FT_New_Face(lib_, path.c_str(), 0, &face_) == 0) {
          if (FT_Set_Pixel_Sizes(face_, 0, static_cast<FT_UInt>(px)) == 0) break;
          FT_Done_Face(face_);
        }
        face_ = nullptr;
      }
    }
    if (face_) {
      ascent_ = static_cast<int>((face_->size->metrics.ascender + 63) >> 6);
      descent_ = static_cast<int>((-face_->size->metrics.descender + 63) >> 6);
      return;
    }
    if (!opts.font_path.empty() && !builtin_asked)
      fail("cannot load the label font ", opts.font_path, " (leave DrawOptions::font_path empty for the built-in font)");
    scale_ = static_cast<double>(px) / kFallbackPx;
    ascent_ = static_cast<int>(std::ceil(kFallbackAscent * scale_));
    descent_ = static_cast<int>(std::ceil(kFallbackDescent * scale_));
  }
  LabelFont(const LabelFont&) = delete;
  LabelFont& operator=(const LabelFont&) = delete;
  ~LabelFont() {
    if (face_) FT_Done_Face(face_);
    if (lib_) FT_Done_FreeType(lib_);
  }
  int ascent() const { return ascent_; }
  int descent() const { return descent_; }

  // False when neither the code point nor '?' can be drawn.
  bool glyph(uint32_t cp, Glyph& g) const { return face_ ? truetype(cp, g) : builtin(cp, g); }

 private:
  bool truetype(uint32_t cp, Glyph& out) const {
    if (FT_Load_Char(face_, cp, FT_LOAD_RENDER) != 0 && FT_Load_Char(face_, '?', FT_LOAD_RENDER) != 0) return false;
    const FT_GlyphSlot g = face_->glyph;
    const FT_Bitmap& bm = g->bitmap;
    out.left = g->bitmap_left, out.top = g->bitmap_top, out.advance = static_cast<int>(g->advance.x >> 6);
    out.width = static_cast<int>(bm.width), out.rows = static_cast<int>(bm.rows);
    out.alpha.assign(static_cast<size_t>(out.width) * out.rows, 0);
    for (int r = 0; r < out.rows; ++r) {
      const unsigned char* src = bm.buffer + static_cast<ptrdiff_t>(r) * bm.pitch;
      for (int c = 0; c < out.width; ++c)
        out.alpha[static_cast<size_t>(r) * out.width + c] =
            bm.pixel_mode == FT_PIXEL_MODE_MONO ? ((src[c >> 3] >> (7 - (c & 7))) & 1) * 255 : src[c];
    }
    return true;
  }

  // The bitmap glyph resampled (area average of the 32 px coverage) to the requested size.
  bool builtin(uint32_t cp, Glyph& out) const {
    if (cp < 32 || cp > 126) cp = '?';
    const FallbackGlyph& f = kFallbackGlyphs[cp - 32];
    out.left = static_cast<int>(std::lround(f.left * scale_));
    out.top = static_cast<int>(std::lround(f.top * scale_));
    out.advance = std::max(1, static_cast<int>(std::lround(f.advance * scale_)));
    out.width = f.width ? std::max(1, static_cast<int>(std::lround(f.width * scale_))) : 0;
    out.rows = f.rows ? std::max(1, static_cast<int>(std::lround(f.rows * scale_))) : 0;
    out.alpha.assign(static_cast<size_t>(out.width) * out.rows, 0);
    auto at = [&](int r, int c) {
      const char h = f.coverage[static_cast<size_t>(r) * f.width + c];
      return (h <= '9' ? h - '0' : h - 'a' + 10) * 17;  // 0..15 -> 0..255
    };
    for (int r = 0; r < out.rows; ++r)
      for (int c = 0; c < out.width; ++c) {
        // Source pixels covered by this destination pixel.
        const int r0 = r * static_cast<int>(f.rows) / out.rows, r1 = std::max(r0 + 1, (r + 1) * static_cast<int>(f.rows) / out.rows);
        const int c0 = c * static_cast<int>(f.width) / out.width, c1 = std::max(c0 + 1, (c + 1) * static_cast<int>(f.width) / out.width);
        int sum = 0;
        for (int y = r0; y < r1; ++y)
          for (int x = c0; x < c1; ++x) sum += at(y, x);
        out.alpha[static_cast<size_t>(r) * out.width + c] = static_cast<uint8_t>(sum / ((r1 - r0) * (c1 - c0)));
      }
    return true;
  }

  FT_Library lib_ = nullptr;
  FT_Face face_ = nullptr;
  double scale_ = 1;
  int ascent_ = 0, descent_ = 0;
};

// Fills the inclusive rectangle [x0, x1] x [y0, y1], clipped to the image.
void fill_rect(Image& img, int x0, int y0, int x1, int y1, const Color& c) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0);
  x1 = std::min(x1, img.width - 1), y1 = std::min(y1, img.height - 1);
  for (int y = y0; y <= y1; ++y) {
    uint8_t* p = img.pixel(x0, y);
    for (int x = x0; x <= x1; ++x, p += 3) p[0] = c[0], p[1] = c[1], p[2] = c[2];
  }
}

// Decodes UTF-8 (class names may not be ASCII); malformed bytes become '?'.
std::vector<uint32_t> utf8_codepoints(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
      out.push_back('?');
      ++i;
      continue;
    }
    uint32_t cp = len == 1 ? c : c & (0x7F >> len);
    bool ok = true;
    for (int k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = ok && (cc >> 6) == 2;
      cp = (cp << 6) | (cc & 0x3F);
    }
    out.push_back(ok ? cp : '?');
    i += ok ? len : 1;
  }
  return out;
}

int text_width(const LabelFont& font, const std::vector<uint32_t>& cps) {
  int w = 0;
  Glyph g;
  for (uint32_t cp : cps)
    if (font.glyph(cp, g)) w += g.advance;
  return w;
}

// Alpha-blends the text (anti-aliased coverage) with its baseline at `baseline`.
void draw_text(Image& img, const LabelFont& font, const std::vector<uint32_t>& cps, int x, int baseline, const Color& c) {
  Glyph g;
  for (uint32_t cp : cps) {
    if (!font.glyph(cp, g)) continue;
    const int left = x + g.left, top = baseline - g.top;
    for (int r = 0; r < g.rows; ++r) {
      const int y = top + r;
      if (y < 0 || y >= img.height) continue;
      for (int col = 0; col < g.width; ++col) {
        const int px = left + col;
        if (px < 0 || px >= img.width) continue;
        const int a = g.alpha[static_cast<size_t>(r) * g.width + col];
        if (a == 0) continue;
        uint8_t* p = img.pixel(px, y);
        for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>((p[k] * (255 - a) + c[k] * a + 127) / 255);
      }
    }
    x += g.advance;
  }
}

// WCAG relative luminance of an sRGB colour (B, G, R order).
double relative_luminance(const Color& bgr) {
  auto lin = [](uint8_t v) {
    const double c = v / 255.0;
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
  };
  return 0.0722 * lin(bgr[0]) + 0.7152 * lin(bgr[1]) + 0.2126 * lin(bgr[2]);
}

int to_pixel(float v) {
  // int() truncation as Ultralytics, guarded against NaN / huge values.
  if (!(v == v)) return 0;
  return static_cast<int>(std::clamp(v, -1e6f, 1e6f));
}

}  // namespace

double contrast_ratio(const std::array<uint8_t, 3>& a, const std::array<uint8_t, 3>& b) {
  const double la = relative_luminance(a), lb = relative_luminance(b);
  return (std::max(la, lb) + 0.05) / (std::min(la, lb) + 0.05);
}

std::array<uint8_t, 3> label_text_color(const std::array<uint8_t, 3>& background) {
  const Color black{0, 0, 0}, white{255, 255, 255};
  return contrast_ratio(background, black) >= contrast_ratio(background, white) ? black : white;
}

std::array<uint8_t, 3> class_color(int cls) {
  const int n = 20;
  const uint32_t rgb = kPalette[((cls % n) + n) % n];
  return {static_cast<uint8_t>(rgb & 0xFF), static_cast<uint8_t>((rgb >> 8) & 0xFF),
          static_cast<uint8_t>((rgb >> 16) & 0xFF)};
}

void draw_detections(Image& img, const std::vector<Box>& boxes, const std::vector<std::string>& names,
                     const DrawOptions& opts) {
  if (img.empty() || boxes.empty()) return;
  KESTREL_CHECK(img.bgr.size() == static_cast<size_t>(img.width) * img.height * 3,
                "draw_detections: image buffer does not match its size");
  const double mean_side = (img.width + img.height) / 2.0;
  const int lw = opts.line_width > 0 ? opts.line_width : std::max(static_cast<int>(std::nearbyint(mean_side * 0.003)), 2);
  const int font_px =
      opts.font_px > 0 ? opts.font_px : std::max(static_cast<int>(std::nearbyint(mean_side * 0.035)), 12);

  std::optional<LabelFont> font;
  int ascent = 0, text_h = 0;
  if (opts.labels) {
    font.emplace(opts, font_px);
    ascent = font->ascent();
    text_h = ascent + font->descent();
  }
  const int before = lw / 2, after = lw - 1 - before;  // the line straddles the box edge
  const int pad_x = std::max(2, font_px / 5), pad_y = std::max(1, font_px / 10);

  // Lowest score first, so the strongest boxes and labels end up on top.
  std::vector<const Box*> order;
  for (const Box& b : boxes) order.push_back(&b);
  std::stable_sort(order.begin(), order.end(), [](const Box* a, const Box* b) { return a->score < b->score; });

  for (const Box* b : order) {
    const Color color = class_color(b->cls);
    const int x1 = to_pixel(b->x1), y1 = to_pixel(b->y1), x2 = to_pixel(b->x2), y2 = to_pixel(b->y2);
    fill_rect(img, x1 - before, y1 - before, x2 + after, y1 + after, color);  // top
    fill_rect(img, x1 - before, y2 - before, x2 + after, y2 + after, color);  // bottom
    fill_rect(img, x1 - before, y1 - before, x1 + after, y2 + after, color);  // left
    fill_rect(img, x2 - before, y1 - before, x2 + after, y2 + after, color);  // right
    if (!opts.labels) continue;

    std::string label = (b->cls >= 0 && static_cast<size_t>(b->cls) < names.size()) ? names[b->cls]
                                                                                     : "class " + std::to_string(b->cls);
    char score[16];
    std::snprintf(score, sizeof(score), " %.2f", b->score);
    label += score;
    const std::vector<uint32_t> cps = utf8_codepoints(label);
    const int label_w = text_width(*font, cps) + 2 * pad_x, label_h = text_h + 2 * pad_y;
    // Above the box when it fits, else just inside its top edge; shifted left to stay in the image.
    int lx = std::max(0, std::min(x1 - before, img.width - label_w));
    int ly = y1 - before - label_h >= 0 ? y1 - before - label_h : std::max(0, y1 - before);
    ly = std::max(0, std::min(ly, img.height - label_h));
    fill_rect(img, lx, ly, lx + label_w - 1, ly + label_h - 1, color);
    // Black or white, whichever contrasts more with the label's colour (WCAG ratio >= 4.5 for every colour).
    draw_text(img, *font, cps, lx + pad_x, ly + pad_y + ascent, label_text_color(color));
  }
}

}  // namespace kestrel::yolo
