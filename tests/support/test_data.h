#pragma once
// Where the shared test data lives: $KESTREL_DATA, else ../shared/data next to the checkout.
// Tests that need it call KESTREL_REQUIRE_DATA("models/yolov8n.onnx") and are skipped, with a message
// naming the missing path, when it is absent.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace kestrel::test {

inline std::filesystem::path data_dir() {
  if (const char* env = std::getenv("KESTREL_DATA"); env && *env) return env;
  return std::filesystem::path(KESTREL_SOURCE_DIR) / ".." / "shared" / "data";
}

inline std::filesystem::path data_path(const std::string& rel) { return data_dir() / rel; }

}  // namespace kestrel::test

#define KESTREL_REQUIRE_DATA(rel)                                                                  \
  do {                                                                                             \
    if (!std::filesystem::exists(::kestrel::test::data_path(rel)))                                 \
      GTEST_SKIP() << "test data not found: " << ::kestrel::test::data_path(rel).string()          \
                   << " (set KESTREL_DATA to the shared data folder)";                            \
  } while (0)
