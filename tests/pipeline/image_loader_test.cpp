// The decode pool behind val / predict / bench --images: results in order whatever the thread count,
// a bad file is its own entry's error (never another's, never a stall), memory bounded by the window.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "kestrel/image_loader.h"
#include "kestrel/pipeline.h"

namespace fs = std::filesystem;

namespace {

// A folder of small images whose sizes encode their index (width = 8 + i), plus broken entries.
struct Folder {
  fs::path dir;
  std::vector<std::string> files;
  explicit Folder(int n, const std::vector<int>& broken = {}) {
    dir = fs::temp_directory_path() / ("kestrel_loader_" + std::to_string(::getpid()) + "_" + std::to_string(n));
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (int i = 0; i < n; ++i) {
      const fs::path p = dir / ("img" + std::to_string(1000 + i) + (i % 2 ? ".png" : ".jpg"));
      if (std::find(broken.begin(), broken.end(), i) != broken.end()) {
        std::ofstream(p) << "not an image";
      } else {
        auto img = kestrel::image::Image::filled(8 + i, 5, static_cast<uint8_t>(i), 10, 20);
        kestrel::image::write_image(p.string(), img);
      }
      files.push_back(p.string());
    }
  }
  ~Folder() { fs::remove_all(dir); }
};

TEST(ImageLoader, ReturnsEveryImageInOrderWithManyThreads) {
  Folder f(40);
  for (int threads : {1, 3, 8}) {
    kestrel::image::ImageLoader loader(f.files, threads, 5);
    for (int i = 0; i < 40; ++i) {
      ASSERT_FALSE(loader.done());
      const auto li = loader.next();
      EXPECT_EQ(li.index, static_cast<size_t>(i));
      EXPECT_EQ(li.path, f.files[i]);
      ASSERT_TRUE(li.error.empty()) << li.error;
      EXPECT_EQ(li.image.width, 8 + i) << "image " << i << " with " << threads << " threads";
    }
    EXPECT_TRUE(loader.done());
    EXPECT_THROW(loader.next(), kestrel::Error);
  }
}

TEST(ImageLoader, BrokenAndMissingFilesAreTheirOwnEntriesErrors) {
  Folder f(12, {0, 5, 11});
  auto files = f.files;
  files.insert(files.begin() + 3, (f.dir / "missing.jpg").string());
  kestrel::image::ImageLoader loader(files, 4, 2);
  int errors = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto li = loader.next();
    EXPECT_EQ(li.index, i);
    if (!li.error.empty()) {
      ++errors;
      EXPECT_NE(li.error.find(fs::path(files[i]).filename().string()), std::string::npos) << li.error;
      EXPECT_TRUE(li.image.empty());
    } else {
      EXPECT_FALSE(li.image.empty());
    }
  }
  EXPECT_EQ(errors, 4);
}

TEST(ImageLoader, StopsCleanlyWhenDroppedHalfWay) {
  Folder f(30);
  for (int k = 0; k < 5; ++k) {
    kestrel::image::ImageLoader loader(f.files, 4, 3);
    for (int i = 0; i < k * 3; ++i) loader.next();
  }  // destructors join their workers: a deadlock would hang the test
  SUCCEED() << "every loader joined";
}

}  // namespace

// Four batches ahead, but never fewer than two images per thread: at batch 1 a window of four would
// leave most of a large pool idle.
TEST(ImageLoader, WindowKeepsEveryThreadBusy) {
  using kestrel::image::ImageLoader;
  EXPECT_EQ(ImageLoader::window_for_batch(32, 16), 128u);
  EXPECT_EQ(ImageLoader::window_for_batch(1, 16), 32u);
  EXPECT_EQ(ImageLoader::window_for_batch(1, 1), 4u);
  EXPECT_EQ(ImageLoader::window_for_batch(0, 2), 4u);
  EXPECT_EQ(ImageLoader::window_for_batch(1, 0), static_cast<size_t>(std::max(4, 2 * ImageLoader::resolve_threads(0))));
}

// The default pool leaves one hardware thread to whoever takes the images (the batch loop stages them
// for the GPU on its own thread), but never has no decoder; a size asked for is the size given.
TEST(ImageLoader, DefaultPoolLeavesOneHardwareThread) {
  using kestrel::image::ImageLoader;
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(ImageLoader::resolve_threads(0), std::max(1, hw - 1));
  EXPECT_EQ(ImageLoader::resolve_threads(3), 3);
  EXPECT_EQ(ImageLoader::resolve_threads(1), 1);
}
