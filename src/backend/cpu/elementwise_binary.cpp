// Broadcasting binary and variadic ops (Add, Sub, Mul, Div, Pow, comparisons, Min/Max/Sum, Where),
// for float32 and the integer types that shape sub-graphs use.
#include <cmath>
#include <cstring>

#include "backend/cpu/broadcast.h"
#include "backend/cpu/kernel.h"
#include "backend/cpu/kernels.h"

namespace kestrel::cpu {

std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out) {
  std::vector<int64_t> s(out.size(), 0);
  int64_t stride = 1;
  for (int64_t d = static_cast<int64_t>(in.size()) - 1; d >= 0; --d) {
    const size_t od = out.size() - in.size() + static_cast<size_t>(d);
    s[od] = in[d] == 1 ? 0 : stride;
    stride *= in[d];
  }
  return s;
}

namespace {
template <typename T, typename R, typename F>
void binary_typed(const HostTensor& a, const HostTensor& b, HostTensor& y, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* py = y.data<R>();
  const int64_t n = y.numel();
  if (a.shape() == y.shape() && b.shape() == y.shape()) {
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
    return;
  }
  if (a.shape() == y.shape() && b.numel() == 1) {
    const T s = pb[0];
#pragma omp parallel for if (n > (1 << 16)) schedule(static)
    for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], s);
    return;
  }
  std::array<std::vector<int64_t>, 2> st = {broadcast_strides(a.shape(), y.shape()), broadcast_strides(b.shape(), y.shape())};
  for_each_broadcast<2>(y.shape(), st, [&](int64_t o, const std::array<int64_t, 2>& off) { py[o] = f(pa[off[0]], pb[off[1]]); });
}

template <typename R, typename F>
void binary_dispatch(const Node& n, const HostTensor& a, const HostTensor& b, HostTensor& y, F f) {
  KESTREL_CHECK(a.dtype() == b.dtype(), n.op, " node '", n.name, "': mixed dtypes");
  switch (a.dtype()) {
    case DType::F32: binary_typed<float, std::conditional_t<std::is_same_v<R, void>, float, R>>(a, b, y, f); break;
    case DType::I64: binary_typed<int64_t, std::conditional_t<std::is_same_v<R, void>, int64_t, R>>(a, b, y, f); break;
    case DType::I32: binary_typed<int32_t, std::conditional_t<std::is_same_v<R, void>, int32_t, R>>(a, b, y, f); break;
    case DType::Bool: binary_typed<uint8_t, std::conditional_t<std::is_same_v<R, void>, uint8_t, R>>(a, b, y, f); break;
    default: fail(n.op, " node '", n.name, "': unsupported dtype ", dtype_name(a.dtype()));
  }
}
}  // namespace

void k_add(const Node& n, Inputs in, Outputs out) { binary_dispatch<void>(n, *in[0], *in[1], out[0], [](auto x, auto y) { return x + y; }); }
void k_sub(const Node& n, Inputs in, Outputs out) { binary_dispatch<void>(n, *in[0], *in[1], out[0], [](auto x, auto y) { return x - y; }); }
void k_mul(const Node& n, Inputs in, Outputs out) { binary_dispatch<void>(n, *in[0], *in[1], out[0], [](auto x, auto y) { return x * y; }); }
void k_div(const Node& n, Inputs in, Outputs out) {
  binary_dispatch<void>(n, *in[0], *in[1], out[0], [](auto x, auto y) {
    if constexpr (std::is_integral_v<decltype(x)>) {
      if (y == 0) fail("integer division by zero");
    }
    return static_cast<decltype(x)>(x / y);
  });
}

void k_pow(const Node& n, Inputs in, Outputs out) {
  KESTREL_CHECK(in[0]->dtype() == DType::F32, "Pow node '", n.name, "': float32 base only");
  HostTensor e = in[1]->dtype() == DType::F32 ? *in[1] : in[1]->cast(DType::F32);
  binary_typed<float, float>(*in[0], e, out[0], [](float x, float y) {
    if (y == 2.f) return x * x;  // exact, as ORT special-cases squares
    if (y == 0.5f) return std::sqrt(x);
    return std::pow(x, y);
  });
}

void k_equal(const Node& n, Inputs in, Outputs out) { binary_dispatch<uint8_t>(n, *in[0], *in[1], out[0], [](auto x, auto y) { return static_cast<uint8_t>(x == y); }); }
void k_less(const Node& n, Inputs in, Outputs out) { binary_dispatch<uint8_t>(n, *in[0], *in[1], out[0], [](auto x, auto y) { return static_cast<uint8_t>(x < y); }); }
void k_greater(const Node& n, Inputs in, Outputs out) { binary_dispatch<uint8_t>(n, *in[0], *in[1], out[0], [](auto x, auto y) { return static_cast<uint8_t>(x > y); }); }

namespace {
template <typename F>
void variadic(const Node& n, Inputs in, Outputs out, F f) {
  HostTensor acc = in[0]->shape() == out[0].shape() ? in[0]->clone() : HostTensor();
  if (acc.empty()) {  // broadcast the first input up to the output shape
    HostTensor zero(in[0]->dtype(), {});
    std::memset(zero.raw(), 0, zero.nbytes());
    acc = HostTensor(in[0]->dtype(), out[0].shape());
    binary_dispatch<void>(n, *in[0], zero, acc, [](auto x, auto) { return x; });
  }
  for (size_t i = 1; i < in.size(); ++i) {
    HostTensor next(acc.dtype(), acc.shape());
    binary_dispatch<void>(n, acc, *in[i], next, f);
    acc = next;
  }
  std::memcpy(out[0].raw(), acc.raw(), acc.nbytes());
}
}  // namespace

void k_min(const Node& n, Inputs in, Outputs out) { variadic(n, in, out, [](auto x, auto y) { return x < y ? x : y; }); }
void k_max(const Node& n, Inputs in, Outputs out) { variadic(n, in, out, [](auto x, auto y) { return x > y ? x : y; }); }
void k_sum(const Node& n, Inputs in, Outputs out) { variadic(n, in, out, [](auto x, auto y) { return x + y; }); }

void k_where(const Node& n, Inputs in, Outputs out) {
  const HostTensor& c = *in[0];
  const HostTensor& a = *in[1];
  const HostTensor& b = *in[2];
  KESTREL_CHECK(a.dtype() == b.dtype(), "Where node '", n.name, "': branch dtypes differ");
  const size_t es = dtype_size(a.dtype());
  std::array<std::vector<int64_t>, 3> st = {broadcast_strides(c.shape(), out[0].shape()),
                                            broadcast_strides(a.shape(), out[0].shape()),
                                            broadcast_strides(b.shape(), out[0].shape())};
  const uint8_t* pc = c.data<uint8_t>();
  const std::byte* pa = static_cast<const std::byte*>(a.raw());
  const std::byte* pb = static_cast<const std::byte*>(b.raw());
  std::byte* py = static_cast<std::byte*>(out[0].raw());
  for_each_broadcast<3>(out[0].shape(), st, [&](int64_t o, const std::array<int64_t, 3>& off) {
    std::memcpy(py + o * es, pc[off[0]] ? pa + off[1] * es : pb + off[2] * es, es);
  });
}

}  // namespace kestrel::cpu
