// Folder listings survive broken entries: each is one message naming it, the rest is listed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kestrel/error.h"
#include "util/dir_listing.h"

namespace fs = std::filesystem;
using kestrel::util::list_files;

namespace {

struct Folder : ::testing::Test {
  void SetUp() override {
    root = fs::temp_directory_path() / ("kestrel_listing_" + std::to_string(::getpid()));
    fs::remove_all(root);
    fs::create_directories(root / "sub");
    std::ofstream(root / "b.jpg") << "b";
    std::ofstream(root / "a.JPG") << "a";
    std::ofstream(root / "notes.txt") << "n";
    std::ofstream(root / "sub" / "c.png") << "c";
    fs::create_symlink(root / "missing.jpg", root / "dangling.jpg");
    fs::create_symlink(root / "loop.jpg", root / "loop.jpg");  // points at itself
    fs::create_directory_symlink(root, root / "sub" / "back");  // a cycle
    fs::create_symlink(root / "b.jpg", root / "link_to_b.jpg");
  }
  void TearDown() override { fs::remove_all(root); }
  static bool any(const std::string&) { return true; }
  static bool jpg(const std::string& p) { return p.size() > 4 && (p.ends_with(".jpg") || p.ends_with(".JPG")); }
  static bool mentions(const std::vector<std::string>& lines, const std::string& part) {
    for (auto& l : lines)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }
  fs::path root;
};

TEST_F(Folder, BrokenEntriesAreReportedOneByOne) {
  const auto l = list_files(root.string(), false, jpg);
  EXPECT_EQ(l.files, (std::vector<std::string>{(root / "a.JPG").string(), (root / "b.jpg").string(),
                                               (root / "link_to_b.jpg").string()}));
  EXPECT_TRUE(mentions(l.problems, "dangling.jpg: skipped, a dangling or looping symlink"));
  EXPECT_TRUE(mentions(l.problems, "loop.jpg: skipped, a dangling or looping symlink"));
  EXPECT_EQ(l.problems.size(), 2u);
}

TEST_F(Folder, RecursiveListingStopsAtASymlinkCycle) {
  const auto l = list_files(root.string() + "/", true, any);
  EXPECT_TRUE(std::find(l.files.begin(), l.files.end(), (root / "sub" / "c.png").string()) != l.files.end());
  EXPECT_TRUE(mentions(l.problems, "a symlink back to a folder already listed"));
  EXPECT_EQ(l.files.size(), 5u);  // a.JPG b.jpg link_to_b.jpg notes.txt sub/c.png
}

TEST_F(Folder, AMissingFolderIsAnError) {
  EXPECT_THROW(list_files((root / "nope").string(), false, any), kestrel::Error);
}

}  // namespace
