#pragma once
// Graph rewrites. Each pass is small, separately tested, and leaves a graph with inferred shapes.
#include <cstdint>

#include "kestrel/graph.h"

namespace kestrel::passes {

struct FoldOptions {
  // When a static-batch graph is re-batched, Reshape targets whose leading entry is the old batch
  // are rewritten to the new one (the tracer baked the batch into them).
  int64_t old_batch = 0;
  int64_t new_batch = 0;
};

// Infers shapes node by node and evaluates every node whose inputs are all constant (including
// Shape of a tensor with a known shape) on the CPU backend; folded nodes are removed.
void fold_constants(Graph& g, const FoldOptions& options = {});
// Moves constant parameter inputs (Slice starts/ends, Reshape shape, Unsqueeze axes, Resize sizes, ...)
// into attributes, so backends see one canonical form whatever the opset.
void canonicalize(Graph& g);
// Removes nodes none of whose outputs reach a graph output, then unused values.
void eliminate_dead_nodes(Graph& g);

}  // namespace kestrel::passes
