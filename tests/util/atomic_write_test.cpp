// util::write_file, behind every file Kestrel writes: a failed write (here a file-size limit, which
// fails like a full disk) leaves the old file intact and no temporary behind; check_writable creates
// nothing.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kestrel/error.h"
#include "util/file_io.h"

namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& tag) {
  const fs::path d = fs::temp_directory_path() / ("kestrel_util_" + tag + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

size_t entries(const fs::path& d) {
  size_t n = 0;
  for ([[maybe_unused]] auto& e : fs::directory_iterator(d)) ++n;
  return n;
}

// Lowers the file-size limit for the test's scope: writes past it fail with EFBIG, as on a full disk.
struct FileSizeLimit {
  explicit FileSizeLimit(rlim_t bytes) {
    std::signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    rlimit r = old;
    r.rlim_cur = bytes;
    setrlimit(RLIMIT_FSIZE, &r);
  }
  ~FileSizeLimit() { setrlimit(RLIMIT_FSIZE, &old); }
  rlimit old{};
};

TEST(AtomicWrite, WritesAndReplaces) {
  const fs::path d = fresh_dir("replace");
  const std::string p = (d / "out.bin").string();
  kestrel::util::write_file(p, std::string("first"));
  EXPECT_EQ(slurp(p), "first");
  kestrel::util::write_file(p, std::string("second, longer"));
  EXPECT_EQ(slurp(p), "second, longer");
  EXPECT_EQ(entries(d), 1u);  // no temporary left behind
  fs::remove_all(d);
}

TEST(AtomicWrite, AFailedWriteKeepsTheOldFile) {
  const fs::path d = fresh_dir("full");
  const std::string p = (d / "results.json").string();
  kestrel::util::write_file(p, std::string("old content"));
  const std::string big(64 * 1024, 'x');
  std::string msg;
  {
    FileSizeLimit limit(4096);
    try {
      kestrel::util::write_file(p, big);
    } catch (const kestrel::Error& e) {
      msg = e.what();
    }
  }
  EXPECT_NE(msg.find("cannot write " + p), std::string::npos) << msg;
  EXPECT_EQ(slurp(p), "old content");  // not truncated to 4096 bytes of the new one
  EXPECT_EQ(entries(d), 1u);
  // And a failed first write leaves nothing at all.
  const std::string q = (d / "new.json").string();
  {
    FileSizeLimit limit(4096);
    EXPECT_THROW(kestrel::util::write_file(q, big), kestrel::Error);
  }
  EXPECT_FALSE(fs::exists(q));
  EXPECT_EQ(entries(d), 1u);
  fs::remove_all(d);
}

TEST(AtomicWrite, FollowsASymlinkAndKeepsTheMode) {
  const fs::path d = fresh_dir("link");
  const fs::path target = d / "real.txt", link = d / "link.txt";
  kestrel::util::write_file(target.string(), std::string("a"));
  fs::permissions(target, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  fs::create_symlink("real.txt", link);
  kestrel::util::write_file(link.string(), std::string("b"));
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(slurp(target), "b");
  EXPECT_EQ(fs::status(target).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  fs::remove_all(d);
}

TEST(AtomicWrite, MissingFolderAndFolderTargetAreErrors) {
  const fs::path d = fresh_dir("errors");
  EXPECT_THROW(kestrel::util::write_file((d / "no" / "x.txt").string(), std::string("x")), kestrel::Error);
  EXPECT_THROW(kestrel::util::write_file(d.string(), std::string("x")), kestrel::Error);
  fs::remove_all(d);
}

TEST(CheckWritable, CreatesNothing) {
  const fs::path d = fresh_dir("check");
  kestrel::util::check_writable((d / "later.json").string(), "--json");
  EXPECT_EQ(entries(d), 0u);
  const std::string msg = [&] {
    try {
      kestrel::util::check_writable((d / "missing" / "x.json").string(), "--json");
    } catch (const kestrel::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }();
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;
  EXPECT_THROW(kestrel::util::check_writable(d.string(), "--json"), kestrel::Error);  // a folder
  fs::remove_all(d);
}

}  // namespace
