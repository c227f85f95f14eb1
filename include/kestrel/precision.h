#pragma once
// An engine's precision, on its own so kernels and tools that need only this do not depend on the
// whole runtime API.
#include <cstdint>

namespace kestrel {

// INT8: INT8 convolutions where the model's Q/DQ (or the calibration) says so, FP16 elsewhere.
enum class Precision : uint8_t { FP32 = 0, FP16 = 1, INT8 = 2 };
const char* precision_name(Precision p);

}  // namespace kestrel
