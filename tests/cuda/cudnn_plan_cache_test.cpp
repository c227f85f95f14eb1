// The disk cache of run-time compiled cuDNN plans (src/backend/cuda/cudnn_plan_cache.h): an entry comes
// back only under its own key, "off" disables the cache, and a damaged entry reads as a miss.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "backend/cuda/cudnn_plan_cache.h"
#include "gpu_test_util.h"

namespace {

using namespace kestrel;

class CudnnPlanCache : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("kestrel_plan_cache_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
    std::filesystem::remove_all(dir_);
    setenv("KESTREL_CUDNN_CACHE", dir_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv("KESTREL_CUDNN_CACHE");
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
};

TEST_F(CudnnPlanCache, StoresUnderItsKeyOnly) {
  KESTREL_REQUIRE_GPU();  // the key names the GPU
  EXPECT_FALSE(cuda::load_cudnn_plan("graph A | plan 0"));
  cuda::store_cudnn_plan("graph A | plan 0", "{\"plan\": 1}");
  ASSERT_TRUE(cuda::load_cudnn_plan("graph A | plan 0"));
  EXPECT_EQ(*cuda::load_cudnn_plan("graph A | plan 0"), "{\"plan\": 1}");
  EXPECT_FALSE(cuda::load_cudnn_plan("graph A | plan 1"));
  EXPECT_FALSE(cuda::load_cudnn_plan("graph B | plan 0"));
  cuda::store_cudnn_plan("graph A | plan 0", "{\"plan\": 2}");  // replaced whole
  EXPECT_EQ(*cuda::load_cudnn_plan("graph A | plan 0"), "{\"plan\": 2}");

  // A damaged entry (its key line lost) is a miss, not a wrong plan.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    ++files;
    std::ofstream(e.path(), std::ios::trunc) << "{\"plan\": 2}";
  }
  EXPECT_EQ(files, 1);
  EXPECT_FALSE(cuda::load_cudnn_plan("graph A | plan 0"));
}

TEST_F(CudnnPlanCache, OffStoresNothing) {
  KESTREL_REQUIRE_GPU();
  setenv("KESTREL_CUDNN_CACHE", "off", 1);
  cuda::store_cudnn_plan("graph A | plan 0", "{}");
  EXPECT_FALSE(cuda::load_cudnn_plan("graph A | plan 0"));
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

}  // namespace
