// The tie rule of the tuner's tactic choice (tactic_choice.h).
#include "builder/tactic_choice.h"

#include <algorithm>

#include "kestrel/error.h"

namespace kestrel::bld {

size_t choose_tactic(const std::vector<TimedTactic>& timed) {
  KESTREL_CHECK(!timed.empty(), "internal: no timed tactic to choose from");
  auto by_time = [](const TimedTactic& a, const TimedTactic& b) { return a.ms < b.ms; };
  const float tie = std::min_element(timed.begin(), timed.end(), by_time)->ms * (1.f + kTacticTie);
  // The fastest itself is within the tie: the search always finds one.
  return static_cast<size_t>(std::find_if(timed.begin(), timed.end(), [&](const TimedTactic& t) { return t.ms <= tie; }) -
                             timed.begin());
}

}  // namespace kestrel::bld
