#pragma once
// Which of a layer's timed tactics a build keeps. Tactics whose times differ by less than the timer's
// noise are equally fast, but not always equal in result (cuDNN's INT8 plans round their epilogues
// differently from each other), so the fastest-measured one would make two builds of one model differ
// in their outputs by which tactic the timer happened to rank first. The build keeps the earliest-listed
// tactic among those within kTacticTie of the fastest: the listing order (the reference first, then the
// layer's own kernels, then the libraries' plans in their heuristics' order) decides a tie, not noise.
#include <string>
#include <vector>

namespace kestrel::bld {

// A tactic within this fraction of the fastest time counts as tied with it.
inline constexpr float kTacticTie = 0.03f;

struct TimedTactic {
  std::string name;
  float ms = 0;  // median time; a tactic not timed carefully (clearly slower) is left out of the list
};

// The index in `timed` (listing order) of the tactic the build keeps; `timed` must not be empty.
size_t choose_tactic(const std::vector<TimedTactic>& timed);

}  // namespace kestrel::bld
