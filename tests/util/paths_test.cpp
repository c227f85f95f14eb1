// Path comparisons see through spelling: relative/absolute, "./", "..", trailing slashes, symlinks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kestrel/error.h"
#include "util/paths.h"

namespace fs = std::filesystem;
using namespace kestrel::util;

namespace {

struct Tree : ::testing::Test {
  void SetUp() override {
    root = fs::temp_directory_path() / ("kestrel_paths_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "images");
    std::ofstream(root / "images" / "a.jpg") << "x";
    std::ofstream(root / "model.onnx") << "m";
    fs::create_directory_symlink(root / "images", root / "pics");
    fs::create_symlink(root / "model.onnx", root / "link.onnx");
  }
  void TearDown() override { fs::remove_all(root); }
  std::string s(const fs::path& p) const { return p.string(); }
  fs::path root;
};

TEST_F(Tree, SameFileHoweverSpelled) {
  EXPECT_TRUE(same_path(s(root / "model.onnx"), s(root / "images" / ".." / "model.onnx")));
  EXPECT_TRUE(same_path(s(root / "model.onnx"), s(root / "." / "model.onnx")));
  EXPECT_TRUE(same_path(s(root / "link.onnx"), s(root / "model.onnx")));
  EXPECT_TRUE(same_path(s(root / "pics" / "a.jpg"), s(root / "images" / "a.jpg")));
  EXPECT_TRUE(same_path(s(root / "images") + "/", s(root / "pics")));
  EXPECT_TRUE(same_path(s(root / "new.onnx"), s(root / "images" / ".." / "new.onnx")));  // need not exist
  EXPECT_FALSE(same_path(s(root / "model.onnx"), s(root / "model.onnx.qdq")));
  EXPECT_FALSE(same_path("", s(root / "model.onnx")));
  const fs::path cwd = fs::current_path();
  fs::current_path(root);
  EXPECT_TRUE(same_path("model.onnx", s(root / "model.onnx")));
  EXPECT_TRUE(same_path("./images/a.jpg", s(root / "pics" / "a.jpg")));
  fs::current_path(cwd);
}

TEST_F(Tree, WithinAFolder) {
  EXPECT_TRUE(is_within(s(root / "pics" / "a.jpg"), s(root / "images")));
  EXPECT_TRUE(is_within(s(root / "images"), s(root / "images") + "/"));
  EXPECT_FALSE(is_within(s(root / "images2" / "a.jpg"), s(root / "images")));
  EXPECT_FALSE(is_within(s(root / "model.onnx"), s(root / "images")));
}

TEST_F(Tree, RefuseOverwriteNamesBoth) {
  try {
    refuse_overwrite(s(root / "link.onnx"), "-o", s(root / "model.onnx"), "the model");
    FAIL() << "not refused";
  } catch (const kestrel::UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("-o " + s(root / "link.onnx") + " is the model"), std::string::npos) << msg;
  }
  EXPECT_NO_THROW(refuse_overwrite(s(root / "other.onnx"), "-o", s(root / "model.onnx"), "the model"));
}

}  // namespace
