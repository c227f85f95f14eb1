#pragma once
// --data DATASET for the verbs that measure mAP (val, compare, quantize --val): the dataset loaded with
// the image library's header probe (the sizes the decoder will deliver), its warnings on stderr.
#include <string>

#include "kestrel/eval.h"

namespace kestrel::cli {
eval::Dataset load_val_dataset(const std::string& path);
}  // namespace kestrel::cli
