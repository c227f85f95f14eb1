#pragma once
// The CPU reference backend's kernel interface: one function per ONNX op (one file per op family),
// found through a single dispatch table (kernel_table.cpp). Kernels receive preallocated outputs whose
// shapes came from shape inference, and must be exact rather than fast: they are the oracle for every
// other backend.
#include <span>
#include <vector>

#include "kestrel/graph.h"

namespace kestrel::cpu {

using Inputs = std::span<const HostTensor* const>;  // nullptr for an omitted optional input
using Outputs = std::span<HostTensor>;
using Kernel = void (*)(const Node&, Inputs, Outputs);

Kernel find_kernel(const std::string& op);
std::vector<std::string> kernel_names();

// Evaluates one node; outputs are allocated from the graph's inferred shapes.
std::vector<HostTensor> eval_node(const Graph& g, const Node& n, const std::vector<const HostTensor*>& inputs);

// Broadcast support shared by elementwise kernels: the strides (0 on broadcast dims) of an input
// shape viewed through the output shape.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

}  // namespace kestrel::cpu
