// The calibration cache: a text file a person can read and diff. A cache is only ever applied to the
// model, preprocessing, algorithm and image set it was made from; anything else is refused, naming the
// key that differs, because silently applying another model's scales gives a plausible-looking but
// wrong engine.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "kestrel/quant.h"
#include "util/file_io.h"

namespace kestrel::quant {

namespace {
constexpr const char* kMagic = "# kestrel calibration cache v1";

std::string key_line(const CacheKey& k) {
  std::ostringstream os;
  os << "model=" << k.model_hash << " imgsz=" << k.imgsz << " letterbox=" << k.letterbox << " algorithm=" << k.algorithm
     << " images=" << k.image_count << " image_set=" << k.image_set_hash;
  return os.str();
}

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  const size_t b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}
}  // namespace

void write_cache(const std::string& path, const CacheKey& key, const std::map<std::string, float>& scales) {
  std::ostringstream os;
  os << kMagic << "\n" << key_line(key) << "\n";
  for (auto& [name, s] : scales) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(s));  // 9 digits: the float round-trips
    os << name << ": " << buf << "\n";
  }
  util::write_file(path, os.str());
}

CacheFile read_cache(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail("cannot read calibration cache ", path);
  std::ostringstream text;
  text << file.rdbuf();
  if (file.bad()) fail("cannot read calibration cache ", path);
  return parse_cache(text.str(), path);
}

CacheFile parse_cache(const std::string& text, const std::string& path) {
  std::istringstream f(text);
  std::string line;
  if (!std::getline(f, line) || trim(line) != kMagic)
    fail(path, " is not a kestrel calibration cache (first line must be '", kMagic, "')");
  CacheFile c;
  if (!std::getline(f, line)) fail("calibration cache ", path, ": missing the key line");
  std::istringstream kl(line);
  std::string tok;
  bool seen_model = false;
  while (kl >> tok) {
    const size_t eq = tok.find('=');
    if (eq == std::string::npos) fail("calibration cache ", path, ": bad key entry '", tok, "' on line 2");
    const std::string k = tok.substr(0, eq), v = tok.substr(eq + 1);
    try {
      if (k == "model") c.key.model_hash = v, seen_model = true;
      else if (k == "imgsz") c.key.imgsz = std::stoll(v);
      else if (k == "letterbox") c.key.letterbox = v;
      else if (k == "algorithm") c.key.algorithm = v;
      else if (k == "images") c.key.image_count = std::stoll(v);
      else if (k == "image_set") c.key.image_set_hash = v;
      else fail("calibration cache ", path, ": unknown key '", k, "' on line 2");
    } catch (const std::logic_error&) {
      fail("calibration cache ", path, ": bad value for '", k, "' on line 2");
    }
  }
  if (!seen_model) fail("calibration cache ", path, ": line 2 has no model= key");
  for (int lineno = 3; std::getline(f, line); ++lineno) {
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const size_t colon = t.rfind(": ");  // tensor names may contain ':' themselves
    if (colon == std::string::npos) fail("calibration cache ", path, ": line ", lineno, " is not 'tensor: scale'");
    const std::string name = t.substr(0, colon), value = trim(t.substr(colon + 2));
    char* end = nullptr;
    const float s = std::strtof(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(s > 0) || !std::isnormal(s))
      fail("calibration cache ", path, ": line ", lineno, ": '", value, "' is not a positive normal scale (tensor '",
           name, "')");
    c.scales[name] = s;
  }
  return c;
}

void check_cache_key(const std::string& path, const CacheKey& found, const CacheKey& expected) {
  auto refuse = [&](const char* what, const std::string& got, const std::string& want) {
    fail("calibration cache ", path, " was made for ", what, " ", got, ", not ", want,
         " (delete it or pass another --calib-cache)");
  };
  if (found.model_hash != expected.model_hash) refuse("another model: model hash", found.model_hash, expected.model_hash);
  if (found.imgsz != expected.imgsz)
    refuse("another input size: imgsz", std::to_string(found.imgsz), std::to_string(expected.imgsz));
  if (found.letterbox != expected.letterbox) refuse("other preprocessing: letterbox", found.letterbox, expected.letterbox);
  if (found.algorithm != expected.algorithm) refuse("another algorithm:", found.algorithm, expected.algorithm);
  if (found.image_count != expected.image_count)
    refuse("another image count:", std::to_string(found.image_count), std::to_string(expected.image_count));
  if (found.image_set_hash != expected.image_set_hash)
    refuse("another image set: image_set", found.image_set_hash, expected.image_set_hash);
}

}  // namespace kestrel::quant
