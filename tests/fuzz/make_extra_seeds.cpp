// Seed corpora for the engine, calibration cache and dataset fuzzers: one small valid input each (and
// a few near misses), so that mutations start from the formats' real structure.
//   make_extra_seeds ENGINE_DIR CACHE_DIR DATASET_DIR
#include <filesystem>
#include <fstream>
#include <string>

#include "runtime/plan.h"
#include "tiny_plan.h"

namespace fs = std::filesystem;
using namespace kestrel;

namespace {
void put(const fs::path& p, const std::string& bytes) { std::ofstream(p, std::ios::binary) << bytes; }

std::string engine_bytes() {
  const std::vector<uint8_t> b = rt::serialize_plan(test::tiny_plan(1));
  return std::string(b.begin(), b.end());
}

// The same model at batches 1 and 2 (a batch profile), the second plan sharing the first's weights.
std::string profile_engine_bytes() {
  rt::EngineFile f = rt::single_plan_file(test::tiny_plan(1));
  f.plans.push_back(test::tiny_plan(2));
  f.opt_batch = f.max_batch = 2;
  const std::vector<uint8_t> b = rt::serialize_engine(f);
  return std::string(b.begin(), b.end());
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const fs::path engine = argv[1], cache = argv[2], dataset = argv[3];
  for (const fs::path& d : {engine, cache, dataset}) fs::create_directories(d);
  const std::string e = engine_bytes();
  put(engine / "valid", e);
  put(engine / "profile", profile_engine_bytes());
  put(engine / "truncated", e.substr(0, e.size() / 2));
  put(cache / "valid",
      "# kestrel calibration cache v1\nmodel=0123abcd imgsz=640 letterbox=ultralytics-center-114 algorithm=percentile:99.99 "
      "images=128 image_set=89ab\n/model.0/conv/Conv_input: 0.0078125\nimages: 0.00787402\n");
  put(cache / "bad_scale", "# kestrel calibration cache v1\nmodel=x\nt: 1e-42\n");
  put(dataset / "coco",
      std::string("{\"images\": [{\"id\": 1, \"file_name\": \"a.jpg\", \"width\": 640, \"height\": 480}], "
                  "\"annotations\": [{\"id\": 1, \"image_id\": 1, \"category_id\": 1, \"bbox\": [10, 20, 30, 40], "
                  "\"area\": 1200, \"iscrowd\": 0}], \"categories\": [{\"id\": 1, \"name\": \"person\"}]}") +
          '\0' + '\1');
  put(dataset / "yolo", std::string("names:\n  0: person\n  1: car\nval: images\n") + '\0' + '\0' +
                            "0 0.5 0.5 0.2 0.3\n1 0.25 0.25 0.1 0.1\n");
  return 0;
}
