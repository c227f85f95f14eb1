#include "kestrel/tensor.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>

namespace kestrel {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::I8: case DType::U8: case DType::Bool: return 1;
    case DType::I64: return 8;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I8: return "i8";
    case DType::U8: return "u8";
    case DType::I32: return "i32";
    case DType::I64: return "i64";
    case DType::Bool: return "bool";
  }
  return "?";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? "," : "") << s[i];
  os << ']';
  return os.str();
}

HostTensor::HostTensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  for (int64_t d : shape_) KESTREL_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape_));
  storage_ = std::make_shared<std::vector<std::byte>>(nbytes());
}

HostTensor HostTensor::from_f32(Shape shape, std::vector<float> values) {
  HostTensor t(DType::F32, std::move(shape));
  KESTREL_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "from_f32: size mismatch");
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

HostTensor HostTensor::from_i64(Shape shape, std::vector<int64_t> values) {
  HostTensor t(DType::I64, std::move(shape));
  KESTREL_CHECK(static_cast<int64_t>(values.size()) == t.numel(), "from_i64: size mismatch");
  if (!values.empty()) std::memcpy(t.raw(), values.data(), t.nbytes());
  return t;
}

HostTensor HostTensor::reshaped(Shape shape) const {
  KESTREL_CHECK(shape_numel(shape) == numel(), "cannot reshape ", shape_str(shape_), " to ", shape_str(shape));
  HostTensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

HostTensor HostTensor::clone() const {
  HostTensor t(dtype_, shape_);
  if (nbytes()) std::memcpy(t.raw(), raw(), nbytes());
  return t;
}

namespace {
template <typename Out, typename F>
std::vector<Out> convert_all(const HostTensor& t, F conv) {
  std::vector<Out> out(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = conv(i);
  return out;
}

// Float -> int64 without undefined behaviour: truncates toward zero, saturates at the int64 range,
// NaN gives 0 (a malformed model's NaN shape or index then fails the importer's checks, not the process).
int64_t to_int64_saturating(double v) {
  if (std::isnan(v)) return 0;
  if (v >= 9223372036854775807.0) return std::numeric_limits<int64_t>::max();
  if (v <= -9223372036854775808.0) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(v);
}

double element_as_double(const HostTensor& t, size_t i) {
  switch (t.dtype()) {
    case DType::F32: return t.data<float>()[i];
    case DType::F16: return f16_to_f32(t.data<uint16_t>()[i]);
    case DType::BF16: return bf16_to_f32(t.data<uint16_t>()[i]);
    case DType::I8: return t.data<int8_t>()[i];
    case DType::U8: return t.data<uint8_t>()[i];
    case DType::Bool: return t.data<uint8_t>()[i] ? 1 : 0;
    case DType::I32: return t.data<int32_t>()[i];
    case DType::I64: return static_cast<double>(t.data<int64_t>()[i]);
  }
  return 0;
}
}  // namespace

std::vector<int64_t> HostTensor::to_i64() const {
  if (dtype_ == DType::I64) return {data<int64_t>(), data<int64_t>() + numel()};
  return convert_all<int64_t>(*this, [&](size_t i) { return to_int64_saturating(element_as_double(*this, i)); });
}

std::vector<float> HostTensor::to_f32() const {
  if (dtype_ == DType::F32) return {data<float>(), data<float>() + numel()};
  return convert_all<float>(*this, [&](size_t i) { return static_cast<float>(element_as_double(*this, i)); });
}

HostTensor HostTensor::cast(DType to) const {
  if (to == dtype_) return *this;
  HostTensor out(to, shape_);
  const size_t n = static_cast<size_t>(numel());
  // Integer sources convert exactly through int64 (double would lose int64 precision).
  const bool int_src = dtype_ == DType::I64 || dtype_ == DType::I32 || dtype_ == DType::I8 ||
                       dtype_ == DType::U8 || dtype_ == DType::Bool;
  for (size_t i = 0; i < n; ++i) {
    const double v = element_as_double(*this, i);
    const int64_t iv = int_src && dtype_ == DType::I64 ? data<int64_t>()[i] : to_int64_saturating(v);
    switch (to) {
      case DType::F32: out.data<float>()[i] = static_cast<float>(v); break;
      case DType::F16: out.data<uint16_t>()[i] = f32_to_f16(static_cast<float>(v)); break;
      case DType::BF16: out.data<uint16_t>()[i] = f32_to_bf16(static_cast<float>(v)); break;
      case DType::I8: out.data<int8_t>()[i] = static_cast<int8_t>(iv); break;
      case DType::U8: out.data<uint8_t>()[i] = static_cast<uint8_t>(iv); break;
      case DType::Bool: out.data<uint8_t>()[i] = v != 0; break;
      case DType::I32: out.data<int32_t>()[i] = static_cast<int32_t>(iv); break;
      case DType::I64: out.data<int64_t>()[i] = iv; break;
    }
  }
  return out;
}

uint16_t f32_to_f16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | (abs > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to >= 65520: inf
  if (abs < 0x38800000u) {
    // Subnormal half (or zero): shift the mantissa with round-to-nearest-even.
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t drop = 126 - e;  // half subnormal mantissa = m * 2^(e - 126)
    uint32_t h = m >> drop;
    const uint32_t rem = m & ((1u << drop) - 1);
    const uint32_t half = 1u << (drop - 1);
    if (rem > half || (rem == half && (h & 1u))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = ((abs - 0x38000000u) >> 13);
  const uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;
  return static_cast<uint16_t>(sign | h);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(man & 0x400u)) { man <<= 1; --exp; }
      man &= 0x3ffu;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
  }
  return std::bit_cast<float>(bits);
}

uint16_t f32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

}  // namespace kestrel
