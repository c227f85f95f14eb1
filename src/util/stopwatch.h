#pragma once
// Wall-clock milliseconds since a point in time: the one helper every host-side stage timer uses.
#include <chrono>

namespace kestrel::util {

using Clock = std::chrono::steady_clock;

inline double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace kestrel::util
