// HostTensor conversions on values a malformed model may carry (found by the importer fuzzer: a float
// tensor holding NaN read as integers).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kestrel/tensor.h"

namespace {
using namespace kestrel;

TEST(HostTensor, FloatToIntegerSaturatesAndMapsNanToZero) {
  const float inf = std::numeric_limits<float>::infinity();
  const HostTensor t = HostTensor::from_f32({5}, {std::nanf(""), inf, -inf, 3.9f, -2.5f});
  const std::vector<int64_t> want = {0, std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(), 3, -2};
  EXPECT_EQ(t.to_i64(), want);
  EXPECT_EQ(t.cast(DType::I64).to_i64(), want);
  // Casting between float types never goes through an integer.
  const HostTensor h = t.cast(DType::F16);
  EXPECT_TRUE(std::isnan(h.to_f32()[0]));
  EXPECT_EQ(h.to_f32()[1], inf);
  EXPECT_EQ(h.to_f32()[3], 3.900390625f);  // 3.9 rounded to fp16
}

}  // namespace
