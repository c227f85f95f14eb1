// COCO results files (what --save-json writes and the evaluator reads).
//
// The writer reproduces Ultralytics' output byte for byte: values rounded with Python's round() (exact
// decimal rounding of the binary value, ties to even, then back to the nearest double) and printed as
// Python's repr (shortest round-trip digits; exponent form below 1e-4 and from 1e16), with json.dump's
// ", " / ": " separators. Identical files make a diff against the reference pipeline meaningful.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>

#include "dataset_internal.h"
#include "util/file_io.h"

namespace kestrel::eval {

namespace {

// Python's round(x, ndigits) for finite x: printf-style fixed formatting is exactly rounded on the
// binary value (std::to_chars guarantees it), like CPython's _Py_dg_dtoa mode 3.
double py_round(double x, int ndigits) {
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::fixed, ndigits);
  double y = x;
  std::from_chars(buf, r.ptr, y);
  return y;
}

// Python's repr(float) for finite x.
void append_py_repr(std::string& out, double x) {
  if (x == 0) {
    out += std::signbit(x) ? "-0.0" : "0.0";
    return;
  }
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, x, std::chars_format::scientific);  // shortest: -d.ddde+XX
  std::string s(buf, r.ptr);
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  const size_t epos = s.find('e');
  const int exp10 = std::stoi(s.substr(epos + 1));
  std::string digits = s.substr(0, epos);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  out += sign;
  if (exp10 < -4 || exp10 >= 16) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += exp10 < 0 ? "e-" : "e+";
    const std::string e = std::to_string(std::abs(exp10));
    if (e.size() < 2) out += "0";
    out += e;
    return;
  }
  const int point = exp10 + 1;  // digits before the decimal point
  if (point <= 0) {
    out += "0." + std::string(-point, '0') + digits;
  } else if (static_cast<size_t>(point) >= digits.size()) {
    out += digits + std::string(point - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, point) + "." + digits.substr(point);
  }
}

}  // namespace

std::string coco_results_json(const std::vector<Detection>& dets) {
  std::string out = "[";
  out.reserve(dets.size() * 96 + 2);
  for (size_t i = 0; i < dets.size(); ++i) {
    const Detection& d = dets[i];
    if (!std::isfinite(d.x) || !std::isfinite(d.y) || !std::isfinite(d.w) || !std::isfinite(d.h) ||
        !std::isfinite(d.score))
      fail("detection ", i, " (image ", d.image_id, ") has a non-finite box or score");
    if (i) out += ", ";
    out += "{\"image_id\": " + std::to_string(d.image_id) + ", \"category_id\": " + std::to_string(d.category_id) +
           ", \"bbox\": [";
    const double b[4] = {d.x, d.y, d.w, d.h};
    for (int k = 0; k < 4; ++k) {
      if (k) out += ", ";
      append_py_repr(out, py_round(b[k], 3));
    }
    out += "], \"score\": ";
    append_py_repr(out, py_round(d.score, 5));
    out += "}";
  }
  out += "]";
  return out;
}

void write_coco_results(const std::string& path, const std::vector<Detection>& dets) {
  const std::string text = coco_results_json(dets);
  util::write_file(path, text);
}

std::vector<Detection> parse_coco_results(const std::string& text, const std::string& what) {
  using json = nlohmann::json;
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(what, ": invalid JSON: ", e.what());
  }
  if (!j.is_array()) fail(what, ": a COCO results file is a list of detections");
  std::vector<Detection> out;
  out.reserve(j.size());
  for (size_t i = 0; i < j.size(); ++i) {
    const json& e = j[i];
    auto bad = [&](const char* why) { fail(what, ": entry ", i, ": ", why); };
    if (!e.is_object()) bad("not an object");
    Detection d;
    auto id = e.find("image_id");
    if (id == e.end() || !id->is_number_integer()) bad("image_id must be an integer");
    d.image_id = id->get<int64_t>();
    auto cat = e.find("category_id");
    if (cat == e.end() || !cat->is_number_integer()) bad("category_id must be an integer");
    const int64_t c = cat->get<int64_t>();
    if (c < INT32_MIN || c > INT32_MAX) bad("category_id is out of range");
    d.category_id = static_cast<int>(c);
    auto bb = e.find("bbox");
    if (bb == e.end() || !bb->is_array() || bb->size() != 4) bad("bbox must be [x, y, w, h]");
    for (const auto& v : *bb)
      if (!v.is_number()) bad("bbox must be [x, y, w, h]");
    d.x = (*bb)[0].get<double>();
    d.y = (*bb)[1].get<double>();
    d.w = (*bb)[2].get<double>();
    d.h = (*bb)[3].get<double>();
    auto sc = e.find("score");
    if (sc == e.end() || !sc->is_number()) bad("score must be a number");
    d.score = sc->get<double>();
    out.push_back(d);
  }
  return out;
}

std::vector<Detection> read_coco_results(const std::string& path) {
  return parse_coco_results(detail::read_text_file(path, "results file"), path);
}

}  // namespace kestrel::eval
