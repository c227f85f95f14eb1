#pragma once
// Helpers for the quantization tests: tiny fused graphs, temporary folders of images, and the
// reference arithmetic the tests compare the library with.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "../passes/graph_builder.h"
#include "kestrel/image.h"
#include "kestrel/yolo.h"
#include "kestrel/passes.h"
#include "kestrel/quant.h"

namespace kestrel::test {

// A fresh, empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("kestrel_quant_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// `count` small random PNG images img_000.png ... in `dir`.
inline void write_images(const std::string& dir, int count, int w = 40, int h = 30, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  for (int i = 0; i < count; ++i) {
    image::Image img = image::Image::filled(w, h);
    for (auto& b : img.bgr) b = static_cast<uint8_t>(rng() & 0xff);
    char name[32];
    std::snprintf(name, sizeof name, "img_%03d.png", i);
    image::write_image((std::filesystem::path(dir) / name).string(), img);
  }
}

// images [1,3,S,S] -> conv a (3->8, 3x3, SiLU) -> conv b (8->8, 3x3 stride 2, SiLU) -> conv c (8->4, 1x1)
// -> output; optimized, so the convs are kestrel.Conv named "a", "b", "c".
inline Graph tiny_fused_graph(int64_t size = 16) {
  GraphBuilder b;
  const std::string x = b.input("images", {1, 3, size, size});
  const std::string a = b.silu(b.conv(x, 3, 8, 3, 1, 1, true, "a"));
  const std::string c1 = b.silu(b.conv(a, 8, 8, 3, 2, 1, true, "b"));
  b.output(b.conv(c1, 8, 4, 1, 1, 1, true, "c"));
  Graph g = b.build();
  passes::optimize(g);
  return g;
}

// QuantizeLinear of one value, as ONNX defines it (round half to even, saturate to int8).
inline int8_t quantize_ref(float x, float s) {
  const float q = std::nearbyint(x / s);
  return static_cast<int8_t>(std::fmin(127.f, std::fmax(-128.f, q)));
}

inline const Node* node_named(const Graph& g, const std::string& name) {
  for (auto& n : g.nodes)
    if (n.name == name) return &n;
  return nullptr;
}

// The message of the kestrel::Error `fn` throws ("" when it does not throw).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace kestrel::test
