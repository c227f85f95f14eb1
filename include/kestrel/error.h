#pragma once
// Kestrel reports every failure a user can cause (bad file, bad shape, unsupported op, wrong GPU) as a
// kestrel::Error with a one-line message; the CLI prints it and exits 1. UsageError marks wrong command
// lines (exit 2). Internal invariants use KESTREL_CHECK, which also throws, so a library never aborts.
#include <sstream>
#include <stdexcept>
#include <string>

namespace kestrel {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class UsageError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <typename... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

template <typename... Args>
[[noreturn]] void fail(Args&&... args) {
  throw Error(detail::concat(std::forward<Args>(args)...));
}

}  // namespace kestrel

#define KESTREL_CHECK(cond, ...)                 \
  do {                                           \
    if (!(cond)) ::kestrel::fail(__VA_ARGS__);   \
  } while (0)
