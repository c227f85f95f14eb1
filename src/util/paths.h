#pragma once
// Path comparisons that see through spelling: relative or absolute, "./", "..", trailing slashes and
// symlinks name the same file or folder. Used to refuse an output that would replace an input.
#include <string>

namespace kestrel::util {

// The path with symlinks resolved as far as it exists, made absolute and normalised
// (std::filesystem::weakly_canonical); a path that cannot be resolved comes back absolute and normalised.
std::string resolved(const std::string& path);

// True when a and b name the same file or folder, however spelled (neither needs to exist).
bool same_path(const std::string& a, const std::string& b);

// True when `path` is `folder` or lies anywhere below it.
bool is_within(const std::string& path, const std::string& folder);

// Throws a UsageError naming both when writing `output` (what: "-o", "--save-json", ...) would replace
// the input `input` (input_what: "the model", "the annotation file", ...).
void refuse_overwrite(const std::string& output, const std::string& what, const std::string& input,
                      const std::string& input_what);

}  // namespace kestrel::util
