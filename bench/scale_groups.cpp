// What sharing one scale per data-movement group costs (quant::unify_scale_groups): for every calibrated
// value of a group (C2f's concat and its split halves, the neck's upsample-concat paths), how much
// coarser its quantization step becomes when it takes the group's largest scale, in bits
// (log2 of group scale / own scale). Reads a model and its calibration cache; runs on the CPU.
//   scale_groups MODEL.onnx CACHE
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kestrel/onnx.h"
#include "kestrel/passes.h"
#include "kestrel/quant.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: scale_groups MODEL.onnx CALIBRATION_CACHE\n");
    return 2;
  }
  try {
    kestrel::Graph g = kestrel::import_onnx(argv[1]);
    kestrel::passes::optimize(g);  // the graph calibration saw
    const kestrel::quant::CacheFile cache = kestrel::quant::read_cache(argv[2]);
    const std::map<std::string, std::string> group = kestrel::quant::data_movement_groups(g);
    std::map<std::string, std::vector<std::pair<std::string, float>>> members;
    for (const auto& [v, root] : group)
      if (auto s = cache.scales.find(v); s != cache.scales.end()) members[root].push_back({v, s->second});
    int grouped = 0;
    double bits = 0, worst = 0;
    for (const auto& [root, m] : members) {
      float top = 0;
      for (const auto& [v, s] : m) top = std::max(top, s);
      std::printf("group of %zu calibrated values, scale %.5f\n", m.size(), top);
      for (const auto& [v, s] : m) {
        const double lost = std::log2(static_cast<double>(top) / s);
        std::printf("  %-48s own %.5f  %.2f bits coarser\n", v.c_str(), s, lost);
        bits += lost, worst = std::max(worst, lost), ++grouped;
      }
    }
    std::printf("%d of %zu calibrated values share a group scale: %.2f bits coarser on average, %.2f at most\n",
                grouped, cache.scales.size(), grouped ? bits / grouped : 0.0, worst);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scale_groups: %s\n", e.what());
    return 1;
  }
  return 0;
}
