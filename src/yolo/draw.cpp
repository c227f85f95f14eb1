// Box + label annotation, sized like Ultralytics' Annotator, text rendered with FreeType.
#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

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

struct FontFace {
  FT_Library lib = nullptr;
  FT_Face face = nullptr;
  FontFace() = default;
  FontFace(const FontFace&) = delete;
  FontFace& operator=(const FontFace&) = delete;
  ~FontFace() {
    if (face) FT_Done_Face(face);
    if (lib) FT_Done_FreeType(lib);
  }
};

void load_font(FontFace& f, const DrawOptions& opts, int px) {
  std::vector<std::string> candidates;
  if (!opts.font_path.empty()) {
    candidates.push_back(opts.font_path);  // an explicit choice is not silently replaced
  } else {
    if (const char* env = std::getenv("KESTREL_FONT"); env && *env) candidates.emplace_back(env);
    candidates.emplace_back("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");  // Debian/Ubuntu
    candidates.emplace_back("/usr/share/fonts/TTF/DejaVuSans.ttf");              // Arch
    candidates.emplace_back("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf"); // Fedora
  }
  if (FT_Init_FreeType(&f.lib) != 0) fail("cannot initialise FreeType");
  for (const std::string& path : candidates) {
    if (FT_New_Face(f.lib, path.c_str(), 0, &f.face) == 0) {
      if (FT_Set_Pixel_Sizes(f.face, 0, static_cast<FT_UInt>(px)) == 0) return;
      FT_Done_Face(f.face);
      f.face = nullptr;
    }
  }
  fail("cannot load a TrueType font for labels (tried ", candidates.front(),
       "); set KESTREL_FONT or DrawOptions::font_path, or draw with labels = false");
}

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

bool load_glyph(FT_Face face, uint32_t cp) {
  if (FT_Load_Char(face, cp, FT_LOAD_RENDER) == 0) return true;
  return FT_Load_Char(face, '?', FT_LOAD_RENDER) == 0;
}

int text_width(FT_Face face, const std::vector<uint32_t>& cps) {
  int w = 0;
  for (uint32_t cp : cps)
    if (load_glyph(face, cp)) w += static_cast<int>(face->glyph->advance.x >> 6);
  return w;
}

// Alpha-blends the text (anti-aliased coverage) with its baseline at `baseline`.
void draw_text(Image& img, FT_Face face, const std::vector<uint32_t>& cps, int x, int baseline, const Color& c) {
  for (uint32_t cp : cps) {
    if (!load_glyph(face, cp)) continue;
    const FT_GlyphSlot g = face->glyph;
    const FT_Bitmap& bm = g->bitmap;
    const int left = x + g->bitmap_left, top = baseline - g->bitmap_top;
    for (unsigned r = 0; r < bm.rows; ++r) {
      const int y = top + static_cast<int>(r);
      if (y < 0 || y >= img.height) continue;
      const unsigned char* src = bm.buffer + static_cast<ptrdiff_t>(r) * bm.pitch;
      for (unsigned col = 0; col < bm.width; ++col) {
        const int px = left + static_cast<int>(col);
        if (px < 0 || px >= img.width) continue;
        const int a = bm.pixel_mode == FT_PIXEL_MODE_MONO ? ((src[col >> 3] >> (7 - (col & 7))) & 1) * 255 : src[col];
        if (a == 0) continue;
        uint8_t* p = img.pixel(px, y);
        for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>((p[k] * (255 - a) + c[k] * a + 127) / 255);
      }
    }
    x += static_cast<int>(g->advance.x >> 6);
  }
}

int to_pixel(float v) {
  // int() truncation as Ultralytics, guarded against NaN / huge values.
  if (!(v == v)) return 0;
  return static_cast<int>(std::clamp(v, -1e6f, 1e6f));
}

}  // namespace

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

  FontFace font;
  int ascent = 0, text_h = 0;
  if (opts.labels) {
    load_font(font, opts, font_px);
    ascent = static_cast<int>((font.face->size->metrics.ascender + 63) >> 6);
    const int descent = static_cast<int>((-font.face->size->metrics.descender + 63) >> 6);
    text_h = ascent + descent;
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
    const int label_w = text_width(font.face, cps) + 2 * pad_x, label_h = text_h + 2 * pad_y;
    // Above the box when it fits, else just inside its top edge; shifted left to stay in the image.
    int lx = std::max(0, std::min(x1 - before, img.width - label_w));
    int ly = y1 - before - label_h >= 0 ? y1 - before - label_h : std::max(0, y1 - before);
    ly = std::max(0, std::min(ly, img.height - label_h));
    fill_rect(img, lx, ly, lx + label_w - 1, ly + label_h - 1, color);
    // Dark text on light colours (e.g. F3F3F3, CCED00), white on the rest.
    const double luma = 0.114 * color[0] + 0.587 * color[1] + 0.299 * color[2];
    const Color text = luma > 150 ? Color{0, 0, 0} : Color{255, 255, 255};
    draw_text(img, font.face, cps, lx + pad_x, ly + pad_y + ascent, text);
  }
}

}  // namespace kestrel::yolo
