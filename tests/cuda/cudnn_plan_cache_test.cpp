// The disk cache of run-time compiled cuDNN plans (src/backend/cuda/cudnn_plan_cache.h): an entry comes
// back only under its own key, "off" disables the cache, a damaged entry reads as a miss, and a folder
// set for one cuDNN handle (a context's or a builder's setting) serves that handle only.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "backend/cuda/cudnn_plan_cache.h"
#include "gpu_test_util.h"

namespace {

using namespace kestrel;

constexpr cudnnHandle_t kNoSetting = nullptr;  // a handle with no folder of its own: the default folder

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
  EXPECT_FALSE(cuda::load_cudnn_plan(kNoSetting, "graph A | plan 0"));
  cuda::store_cudnn_plan(kNoSetting, "graph A | plan 0", "{\"plan\": 1}");
  ASSERT_TRUE(cuda::load_cudnn_plan(kNoSetting, "graph A | plan 0"));
  EXPECT_EQ(*cuda::load_cudnn_plan(kNoSetting, "graph A | plan 0"), "{\"plan\": 1}");
  EXPECT_FALSE(cuda::load_cudnn_plan(kNoSetting, "graph A | plan 1"));
  EXPECT_FALSE(cuda::load_cudnn_plan(kNoSetting, "graph B | plan 0"));
  cuda::store_cudnn_plan(kNoSetting, "graph A | plan 0", "{\"plan\": 2}");  // replaced whole
  EXPECT_EQ(*cuda::load_cudnn_plan(kNoSetting, "graph A | plan 0"), "{\"plan\": 2}");

  // A damaged entry (its key line lost) is a miss, not a wrong plan.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    ++files;
    std::ofstream(e.path(), std::ios::trunc) << "{\"plan\": 2}";
  }
  EXPECT_EQ(files, 1);
  EXPECT_FALSE(cuda::load_cudnn_plan(kNoSetting, "graph A | plan 0"));
}

TEST_F(CudnnPlanCache, OffStoresNothing) {
  KESTREL_REQUIRE_GPU();
  setenv("KESTREL_CUDNN_CACHE", "off", 1);
  cuda::store_cudnn_plan(kNoSetting, "graph A | plan 0", "{}");
  EXPECT_FALSE(cuda::load_cudnn_plan(kNoSetting, "graph A | plan 0"));
  EXPECT_FALSE(std::filesystem::exists(dir_));
}

TEST_F(CudnnPlanCache, AFolderSetForAHandleServesThatHandle) {
  KESTREL_REQUIRE_GPU();
  // Only the handle's address is used as the key of the setting: a stand-in value is enough here.
  const auto h = reinterpret_cast<cudnnHandle_t>(static_cast<uintptr_t>(0x1000));
  const std::filesystem::path own = dir_ / "own";
  cuda::set_cudnn_plan_cache(h, own.string());
  cuda::store_cudnn_plan(h, "graph A | plan 0", "{\"plan\": 3}");
  EXPECT_EQ(*cuda::load_cudnn_plan(h, "graph A | plan 0"), "{\"plan\": 3}");
  EXPECT_FALSE(cuda::load_cudnn_plan(kNoSetting, "graph A | plan 0"));  // the default folder has none
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(own)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  cuda::set_cudnn_plan_cache(h, "off");
  EXPECT_FALSE(cuda::load_cudnn_plan(h, "graph A | plan 0"));
  cuda::store_cudnn_plan(h, "graph B | plan 0", "{}");
  cuda::set_cudnn_plan_cache(h, own.string());
  EXPECT_FALSE(cuda::load_cudnn_plan(h, "graph B | plan 0"));  // "off" stored nothing
  cuda::set_cudnn_plan_cache(h, "");  // forgotten: the default folder again
  EXPECT_FALSE(cuda::load_cudnn_plan(h, "graph A | plan 0"));
}

}  // namespace
