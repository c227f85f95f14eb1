// The builder's per-layer precision comparison (builder/precision_by_time.h) on hand-made plans.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "builder/precision_by_time.h"
#include "builder/timing_cache.h"

namespace {
using namespace kestrel;

int add_tensor(rt::Plan& p, const std::string& name) {
  rt::PlanTensor t;
  t.name = name;
  p.tensors.push_back(t);
  return static_cast<int>(p.tensors.size()) - 1;
}
void add_layer(rt::Plan& p, const std::string& name, const std::string& op, std::vector<int32_t> in,
               std::vector<int32_t> out, float ms) {
  rt::PlanLayer l;
  l.name = name, l.op = op, l.inputs = std::move(in), l.outputs = std::move(out), l.time_ms = ms;
  p.layers.push_back(l);
}

TEST(PrecisionByTime, FasterInFp16CountsTheQuantizePassOnlyItsReaderNeeds) {
  // INT8 plan: x -> quantize (0.02) -> a (int8 0.10); x -> quantize (0.03) -> y shared by b (0.05) and c (0.05);
  // d (0.20) reads its own quantize pass (0.01).
  rt::Plan p8;
  p8.header.batch = 32;
  const int x = add_tensor(p8, "x"), xa = add_tensor(p8, "xa"), ya = add_tensor(p8, "ya"), xs = add_tensor(p8, "xs"),
            yb = add_tensor(p8, "yb"), yc = add_tensor(p8, "yc"), xd = add_tensor(p8, "xd"), yd = add_tensor(p8, "yd");
  add_layer(p8, "quantize:a", "kestrel.QuantizeInt8", {x}, {xa}, 0.02f);
  add_layer(p8, "a", "kestrel.ConvInt8", {xa}, {ya}, 0.10f);
  add_layer(p8, "quantize:s", "kestrel.QuantizeInt8", {x}, {xs}, 0.03f);
  add_layer(p8, "b", "kestrel.ConvInt8", {xs}, {yb}, 0.05f);
  add_layer(p8, "c", "kestrel.ConvInt8", {xs}, {yc}, 0.05f);
  add_layer(p8, "quantize:d", "kestrel.QuantizeInt8", {x}, {xd}, 0.01f);
  add_layer(p8, "d", "kestrel.ConvInt8", {xd}, {yd}, 0.20f);
  add_layer(p8, "stem", "kestrel.ConvInt8Stem", {x}, {yd}, 0.30f);
  // FP16 plan: a 0.11 (faster than 0.10 + 0.02 by under 10 %: a near tie stays INT8), b 0.04 (< 0.9 x 0.05:
  // moves; the shared pass is not counted for it), c 0.046 (not under 0.9 x 0.05), d 0.15, stem 0.20 (the
  // stems are compared as the other convs: 0.20 < 0.9 x 0.30).
  rt::Plan p16;
  const int t = add_tensor(p16, "t");
  add_layer(p16, "a", "kestrel.Conv", {t}, {t}, 0.11f);
  add_layer(p16, "b", "kestrel.Conv", {t}, {t}, 0.04f);
  add_layer(p16, "c", "kestrel.Conv", {t}, {t}, 0.046f);
  add_layer(p16, "d", "kestrel.Conv", {t}, {t}, 0.15f);
  add_layer(p16, "stem", "kestrel.ConvStem", {t}, {t}, 0.20f);
  const auto faster = bld::convs_faster_in_fp16(p8, p16);
  ASSERT_EQ(faster.size(), 3u);
  ASSERT_TRUE(faster.count("b"));
  ASSERT_TRUE(faster.count("d"));
  ASSERT_TRUE(faster.count("stem"));
  EXPECT_EQ(faster.at("b"), "measured at batch 32: FP16 0.0400 ms, INT8 0.0500 ms (with its quantize pass)");
  EXPECT_EQ(faster.at("d"), "measured at batch 32: FP16 0.1500 ms, INT8 0.2100 ms (with its quantize pass)");
  EXPECT_EQ(faster.at("stem"), "measured at batch 32: FP16 0.2000 ms, INT8 0.3000 ms (with its quantize pass)");
  EXPECT_NEAR(bld::plan_time_ms(p8), 0.02 + 0.10 + 0.03 + 0.05 + 0.05 + 0.01 + 0.20 + 0.30, 1e-6);
}

// A layer is compared only with a conv of the same name: a stem against a stem or a conv (the FP16 plan
// may lower the first conv either way), never against another kind of layer.
TEST(PrecisionByTime, StemsAreComparedWithTheirFp16Form) {
  rt::Plan p8, p16;
  const int t = add_tensor(p8, "t");
  add_tensor(p16, "t");
  add_layer(p8, "stem", "kestrel.ConvInt8Stem", {t}, {t}, 0.236f);
  add_layer(p16, "stem", "kestrel.Conv", {t}, {t}, 0.129f);
  add_layer(p8, "near", "kestrel.ConvInt8Stem", {t}, {t}, 0.10f);
  add_layer(p16, "near", "kestrel.ConvStem", {t}, {t}, 0.095f);  // not under 0.9 x 0.10
  add_layer(p8, "pool", "kestrel.ConvInt8", {t}, {t}, 0.10f);
  add_layer(p16, "pool", "kestrel.SPPF", {t}, {t}, 0.01f);  // same name, not a conv: not compared
  const auto faster = bld::convs_faster_in_fp16(p8, p16);
  ASSERT_EQ(faster.size(), 1u);
  EXPECT_TRUE(faster.count("stem"));
}

TEST(PrecisionByTime, UntimedLayersAreNeverMoved) {
  rt::Plan p8, p16;
  const int t = add_tensor(p8, "t");
  add_tensor(p16, "t");
  add_layer(p8, "a", "kestrel.ConvInt8", {t}, {t}, 0.f);  // forced or reference tactic: not timed
  add_layer(p16, "a", "kestrel.Conv", {t}, {t}, 0.01f);
  add_layer(p8, "b", "kestrel.ConvInt8", {t}, {t}, 0.05f);
  add_layer(p16, "b", "kestrel.Conv", {t}, {t}, 0.f);
  EXPECT_TRUE(bld::convs_faster_in_fp16(p8, p16).empty());
}

// The choice goes into the timing cache file beside the tactics and comes back only for the same device
// key and signature, and only while every conv it names is still an INT8 conv of the graph.
TEST(PrecisionByTime, ChoiceComesBackFromTheTimingCacheOnlyWhereItStillApplies) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("kestrel_choice_" + std::to_string(getpid()) + ".cache")).string();
  std::filesystem::remove(path);
  bld::TimingCache tactics;  // a tactic entry already in the file stays
  tactics.put("dev", "kestrel.ConvInt8|sig", {"igemm_int8", 0.25f});
  tactics.save(path);
  const std::map<std::string, std::string> int8 = {{"/model.23/cv3.0/cv3.0.0/cv3.0.0.0", ""}, {"/model.8/cv2", ""}, {"c", ""}};
  bld::PrecisionChoice c;
  c.fp16 = {{"/model.23/cv3.0/cv3.0.0/cv3.0.0.0", "measured at batch 32: FP16 0.0555 ms, INT8 0.1103 ms (with its quantize pass)"},
            {"/model.8/cv2", "measured at batch 32: FP16 0.0170 ms, INT8 0.0240 ms (with its quantize pass)"}};
  c.note = "batch 32: 2 INT8 convolutions run in FP16, faster there (layers 3.219 ms against 3.263 ms all INT8)";
  bld::save_precision_choice(path, "dev", "g1|batch 32", c);
  bld::save_precision_choice(path, "dev", "g1|batch 1", {{}, "batch 1: no INT8 convolution is clearly faster in FP16"});

  const auto back = bld::load_precision_choice(path, "dev", "g1|batch 32", int8);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->fp16, c.fp16);
  EXPECT_EQ(back->note, c.note);
  const auto none = bld::load_precision_choice(path, "dev", "g1|batch 1", int8);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->fp16.empty());
  EXPECT_EQ(none->note, "batch 1: no INT8 convolution is clearly faster in FP16");

  EXPECT_FALSE(bld::load_precision_choice(path, "other device", "g1|batch 32", int8).has_value());
  EXPECT_FALSE(bld::load_precision_choice(path, "dev", "g2|batch 32", int8).has_value());
  EXPECT_FALSE(bld::load_precision_choice(path, "dev", "g1|batch 32", {{"/model.8/cv2", ""}, {"c", ""}}).has_value())
      << "a conv that is no longer INT8";
  EXPECT_FALSE(bld::load_precision_choice("", "dev", "g1|batch 32", int8).has_value());

  bld::TimingCache after;
  after.load(path);
  ASSERT_TRUE(after.get("dev", "kestrel.ConvInt8|sig").has_value());
  EXPECT_EQ(after.get("dev", "kestrel.ConvInt8|sig")->tactic, "igemm_int8");

  // A name the cache line cannot hold (a tab) is not stored: that choice is measured again next time.
  bld::save_precision_choice(path, "dev", "g3", {{{"bad\tname", "why"}}, "note"});
  EXPECT_FALSE(bld::load_precision_choice(path, "dev", "g3", {{"bad\tname", ""}}).has_value());
  std::filesystem::remove(path);
}

}  // namespace
