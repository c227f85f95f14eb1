#pragma once
// Between the model-opening files: the CUDA half (cuda_model.cpp) is compiled only in CUDA builds.
#include <string>

namespace kestrel::detail {

#ifdef KESTREL_HAS_CUDA
// True when a CUDA device can be used; else false with the reason in `why_not`.
bool cuda_device_usable(std::string* why_not);
#endif

}  // namespace kestrel::detail
