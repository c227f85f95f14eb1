// The tie rule of the tuner's tactic choice (tactic_choice.h).
#include "builder/tactic_choice.h"

#include <algorithm>

#include "kestrel/error.h"

namespace kestrel::bld {

size_t choose_tactic(const std::vector<TimedTactic>& timed) {
  KESTREL_CHECK(!timed.empty(), "internal: no timed tactic to choose from");
  float fastest = timed[0].ms;
  for (const TimedTactic& t : timed) fastest = std::min(fastest, t.ms);
  for (size_t i = 0; i < timed.size(); ++i)
    if (timed[i].ms <= fastest * (1.f + kTacticTie)) return i;
  return 0;  // unreachable: the fastest is within the tie of itself
}

}  // namespace kestrel::bld
