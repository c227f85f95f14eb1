// util::module_build_id: the linker's build ID of the module holding an address, the same for every
// address in one module, another for another module, and what readelf reads from the file.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "util/build_id.h"

namespace {

using kestrel::util::module_build_id;

int a_function_here() { return 1; }
int another_function_here() { return 2; }

TEST(BuildId, OneModuleOneId) {
  const std::string a = module_build_id(reinterpret_cast<const void*>(&a_function_here));
  ASSERT_FALSE(a.empty()) << "this test binary carries no build ID (CMakeLists.txt links with --build-id)";
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos) << a;
  EXPECT_GE(a.size(), 16u) << a;
  EXPECT_EQ(module_build_id(reinterpret_cast<const void*>(&another_function_here)), a);
}

TEST(BuildId, AnotherModuleAnotherId) {
  const std::string here = module_build_id(reinterpret_cast<const void*>(&a_function_here));
  const void* in_libc = dlsym(RTLD_DEFAULT, "malloc");
  ASSERT_NE(in_libc, nullptr);
  const std::string libc = module_build_id(in_libc);
  if (libc.empty()) GTEST_SKIP() << "this system's C library carries no build ID";
  EXPECT_NE(libc, here);
}

TEST(BuildId, NoModuleNoId) {
  EXPECT_EQ(module_build_id(nullptr), "");
  int on_the_stack = 0;
  EXPECT_EQ(module_build_id(&on_the_stack), "");
}

TEST(BuildId, MatchesReadelf) {
  // This process's file by its pid: /proc/self in popen's shell would be the shell's.
  char cmd[128];
  std::snprintf(cmd, sizeof(cmd), "readelf -n /proc/%d/exe 2>/dev/null", static_cast<int>(getpid()));
  FILE* f = popen(cmd, "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof(buf), f)) out += buf;
  pclose(f);
  const size_t at = out.find("Build ID: ");
  if (at == std::string::npos) GTEST_SKIP() << "no readelf on this machine";
  const std::string id = out.substr(at + 10, out.find_first_of("\r\n", at) - at - 10);
  EXPECT_EQ(module_build_id(reinterpret_cast<const void*>(&a_function_here)), id);
}

}  // namespace
