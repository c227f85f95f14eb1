// The lean runtime carries no ONNX, protobuf or builder code: neither its direct dependencies
// (readelf NEEDED) nor the libraries they pull in (ldd) name onnx or protobuf, and it exports no
// importer or builder symbols.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(RuntimeLink, NoOnnxOrProtobuf) {
  const std::string so = KESTREL_RUNTIME_SO;
  const std::string needed = run("readelf -d '" + so + "' 2>&1");
  ASSERT_NE(needed.find("NEEDED"), std::string::npos) << needed;
  EXPECT_EQ(needed.find("onnx"), std::string::npos) << needed;
  EXPECT_EQ(needed.find("protobuf"), std::string::npos) << needed;
  const std::string ldd = run("ldd '" + so + "' 2>&1");
  EXPECT_EQ(ldd.find("onnx"), std::string::npos) << ldd;
  EXPECT_EQ(ldd.find("protobuf"), std::string::npos) << ldd;
  const std::string syms = run("nm -D --defined-only -C '" + so + "' 2>&1");
  EXPECT_EQ(syms.find("import_onnx"), std::string::npos);
  EXPECT_EQ(syms.find("kestrel::Builder"), std::string::npos);
  EXPECT_NE(syms.find("kestrel::Runtime::deserialize"), std::string::npos) << "the runtime API is not exported";
  std::printf("%s", needed.c_str());
}

// Installed as a versioned library (SONAME libkestrel_runtime.so.N) that exports the kestrel namespace
// only (cmake/exported_symbols.map): no std template instantiations or helpers of the libraries in it.
TEST(RuntimeLink, VersionedSonameAndOnlyTheApiExported) {
  const std::string so = KESTREL_RUNTIME_SO;
  const std::string dynamic = run("readelf -d '" + so + "' 2>&1");
  EXPECT_NE(dynamic.find("Library soname: [libkestrel_runtime.so."), std::string::npos) << dynamic;
  const std::string others = run("nm -D --defined-only '" + so + "' | awk '{print $3}' | grep -v -E '^_Z(N|NK|TVN|TIN|TSN)7kestrel'");
  EXPECT_EQ(others, "") << "exported non-API symbols";
}

}  // namespace
