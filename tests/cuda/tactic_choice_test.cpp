// The tuner's tie rule (builder/tactic_choice.h) on hand-made timings: a tie goes to the earlier-listed
// tactic whatever the order of the measured times, so timer noise cannot change a build's tactics.
#include <gtest/gtest.h>

#include "builder/tactic_choice.h"
#include "kestrel/error.h"

namespace {
using kestrel::bld::choose_tactic;
using kestrel::bld::kTacticTie;
using kestrel::bld::TimedTactic;

TEST(TacticChoice, ClearlyFasterTacticWins) {
  EXPECT_EQ(choose_tactic({{"direct", 1.0f}, {"igemm", 0.5f}, {"cudnn8_0", 0.8f}}), 1u);
  EXPECT_EQ(choose_tactic({{"direct", 0.2f}, {"igemm", 0.5f}}), 0u);  // the reference itself
}

TEST(TacticChoice, TiesGoToTheEarlierListedWhicheverTheTimerRanksFirst) {
  // Two equally fast cuDNN plans measured in both orders of noise: the same one is kept.
  const float t = 0.0089f, noisy = t * (1.f - 0.5f * kTacticTie);
  EXPECT_EQ(choose_tactic({{"direct", 0.05f}, {"cudnn8_0", t}, {"cudnn8_1", noisy}}), 1u);
  EXPECT_EQ(choose_tactic({{"direct", 0.05f}, {"cudnn8_0", noisy}, {"cudnn8_1", t}}), 1u);
  // The bound itself counts as a tie; just beyond it, the faster one is taken.
  EXPECT_EQ(choose_tactic({{"igemm_32x64", 0.0427f * (1.f + kTacticTie)}, {"cudnnbe_0", 0.0427f}}), 0u);
  EXPECT_EQ(choose_tactic({{"igemm_32x64", 0.0427f * (1.f + 2.f * kTacticTie)}, {"cudnnbe_0", 0.0427f}}), 1u);
}

TEST(TacticChoice, TheTieIsMeasuredFromTheFastestNotFromANeighbour) {
  // a is within the tie of b and b of c, but a is not within the tie of c, the fastest: b is kept, not a.
  const float c = 1.0f, b = c * (1.f + 0.9f * kTacticTie), a = b * (1.f + 0.9f * kTacticTie);
  EXPECT_EQ(choose_tactic({{"a", a}, {"b", b}, {"c", c}}), 1u);
}

TEST(TacticChoice, NothingToChooseFromIsAnError) { EXPECT_THROW(choose_tactic({}), kestrel::Error); }

}  // namespace
