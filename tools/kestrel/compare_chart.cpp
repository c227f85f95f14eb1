#include "compare_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace kestrel::cli {

namespace {
std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
std::string escape(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return o;
}
}  // namespace

std::string latency_map_svg(const std::string& title, const std::vector<ChartPoint>& points) {
  const double W = 720, H = 440, L = 70, R = 30, T = 50, B = 60;
  double xmin = 1e30, xmax = 0, ymin = 1, ymax = 0;
  for (const auto& p : points) {
    xmin = std::min(xmin, p.latency_ms);
    xmax = std::max(xmax, p.latency_ms);
    if (p.map >= 0) ymin = std::min(ymin, p.map), ymax = std::max(ymax, p.map);
  }
  if (points.empty()) xmin = 0.1, xmax = 1;
  // Log-scale x across whole decades; y padded around the measured mAPs.
  const double lx0 = std::floor(std::log10(std::max(xmin, 1e-4))), lx1 = std::ceil(std::log10(std::max(xmax, 1e-4)) + 1e-9);
  const double lx1f = lx1 <= lx0 ? lx0 + 1 : lx1;
  if (ymax < ymin) ymin = 0, ymax = 1;
  const double pad = std::max(0.01, (ymax - ymin) * 0.25);
  const double y0 = std::max(0.0, ymin - pad), y1 = std::min(1.0, ymax + pad);
  auto X = [&](double ms) { return L + (std::log10(std::max(ms, 1e-4)) - lx0) / (lx1f - lx0) * (W - L - R); };
  auto Y = [&](double m) { return H - B - (m - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif'>\n";
  s << "<rect width='100%' height='100%' fill='white'/>\n";
  s << "<text x='" << W / 2 << "' y='28' text-anchor='middle' font-size='16'>" << escape(title) << "</text>\n";
  s << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B << "' stroke='black'/>\n";
  s << "<line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B << "' stroke='black'/>\n";
  for (double e = lx0; e <= lx1f + 1e-9; e += 1) {
    const double x = L + (e - lx0) / (lx1f - lx0) * (W - L - R);
    s << "<line x1='" << x << "' y1='" << T << "' x2='" << x << "' y2='" << H - B << "' stroke='#ddd'/>\n";
    s << "<text x='" << x << "' y='" << H - B + 18 << "' text-anchor='middle' font-size='12'>" << fmt("%g", std::pow(10, e)) << "</text>\n";
  }
  for (int k = 0; k <= 4; ++k) {
    const double m = y0 + (y1 - y0) * k / 4, y = Y(m);
    s << "<line x1='" << L << "' y1='" << y << "' x2='" << W - R << "' y2='" << y << "' stroke='#eee'/>\n";
    s << "<text x='" << L - 8 << "' y='" << y + 4 << "' text-anchor='end' font-size='12'>" << fmt("%.3f", m) << "</text>\n";
  }
  s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 18 << "' text-anchor='middle' font-size='13'>latency per batch, ms (median, log scale)</text>\n";
  s << "<text transform='translate(18," << (T + H - B) / 2 << ") rotate(-90)' text-anchor='middle' font-size='13'>mAP@0.5:0.95</text>\n";
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    const double x = X(p.latency_ms), y = p.map >= 0 ? Y(p.map) : H - B;
    const char* c = colors[i % 6];
    s << "<circle cx='" << x << "' cy='" << y << "' r='6' fill='" << (p.map >= 0 ? c : "white") << "' stroke='" << c << "' stroke-width='2'/>\n";
    s << "<text x='" << x + 9 << "' y='" << y - 8 << "' font-size='12' fill='" << c << "'>" << escape(p.label)
      << (p.map >= 0 ? "" : " (no mAP)") << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace kestrel::cli
