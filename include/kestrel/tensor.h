#pragma once
// Element types, shapes and host-side tensors: the currency shared by the IR, the importer, the
// CPU reference backend and the engines.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kestrel/error.h"

namespace kestrel {

enum class DType : uint8_t { F32, F16, BF16, I8, U8, I32, I64, Bool };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

// A shape is a list of concrete extents. A model exported with a dynamic batch keeps that fact in
// Graph::batch_symbol; its dim 0 holds the batch the graph is currently bound to.
using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

// Contiguous row-major host tensor. Copies share storage (it is immutable by convention once a graph
// holds it as a constant); use clone() for a private copy.
class HostTensor {
 public:
  HostTensor() = default;
  HostTensor(DType dtype, Shape shape);

  static HostTensor from_f32(Shape shape, std::vector<float> values);
  static HostTensor from_i64(Shape shape, std::vector<int64_t> values);
  static HostTensor scalar_f32(float v) { return from_f32({}, {v}); }
  static HostTensor scalar_i64(int64_t v) { return from_i64({}, {v}); }

  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_numel(shape_); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  int64_t dim(size_t i) const { return shape_.at(i); }
  size_t rank() const { return shape_.size(); }
  bool empty() const { return !storage_; }

  void* raw() { return storage_ ? storage_->data() : nullptr; }
  const void* raw() const { return storage_ ? storage_->data() : nullptr; }
  template <typename T> T* data() { return static_cast<T*>(raw()); }
  template <typename T> const T* data() const { return static_cast<const T*>(raw()); }
  template <typename T> std::span<const T> span() const { return {data<T>(), static_cast<size_t>(numel())}; }
  template <typename T> std::span<T> span() { return {data<T>(), static_cast<size_t>(numel())}; }

  // Same storage, new shape (numel must match).
  HostTensor reshaped(Shape shape) const;
  HostTensor clone() const;
  // Any numeric dtype read as int64 / float (for shape tensors and constants).
  std::vector<int64_t> to_i64() const;
  std::vector<float> to_f32() const;
  HostTensor cast(DType to) const;

 private:
  DType dtype_ = DType::F32;
  Shape shape_;
  std::shared_ptr<std::vector<std::byte>> storage_;
};

// IEEE half / bfloat16 conversions with round-to-nearest-even (match the GPU's __float2half_rn).
uint16_t f32_to_f16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float bf16_to_f32(uint16_t h);

}  // namespace kestrel
