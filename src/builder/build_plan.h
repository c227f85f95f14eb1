#pragma once
// The builder's working form of a plan: tensors that may still become views of others, layers that
// may still be removed. Stages (each in its own file):
//   lower.cpp     graph -> BuildPlan: layouts (NHWC for the conv trunk), dtypes, layout conversions,
//                 weights converted (OHWI, engine precision), I/O tensors
//   int8_domain.cpp INT8: the values kept as int8 codes end to end (no quantize pass for them)
//   requantize.cpp  INT8: quantize layers folded into the INT8 conv that feeds them
//   views.cpp     Reshape aliases, Slice/Split views, Concat elimination; final strides and offsets
//   tuner.cpp     tactic per layer (timing on the GPU, validated against the reference, cached)
//   streams.cpp   a stream per layer: independent branches side by side
//   arena.cpp     lifetimes and interval packing into one arena
//   emit.cpp      BuildPlan -> rt::Plan (the engine file's content)
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "backend/cuda/layer.h"
#include "kestrel/builder.h"
#include "runtime/plan.h"

namespace kestrel::bld {

enum class ViewKind : uint8_t { None, Box, Alias };

struct BTensor {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  bool channels_last = false;
  rt::Storage storage = rt::Storage::Arena;
  int32_t slot = -1;
  std::optional<HostTensor> data;  // Weights: final dtype and layout
  // View of another tensor (set by views.cpp):
  int view_of = -1;
  ViewKind view_kind = ViewKind::None;
  std::vector<int64_t> box_start, box_step;  // Box: per dim, in the parent's logical coordinates
  // Final placement (set by views.cpp resolve / arena.cpp):
  std::vector<int64_t> strides;
  int64_t elem_offset = 0;  // elements from the root's start
  int root = -1;            // the tensor owning the storage (itself when not a view)
  int64_t offset = 0;       // bytes into the arena / weights (roots: arena.cpp; views: derived)
  bool is_view() const { return view_of >= 0; }
  int64_t bytes() const { return shape_numel(shape) * static_cast<int64_t>(dtype_size(dtype)); }
};

struct BLayer {
  std::string name, op;
  std::vector<int> in, out;  // -1: omitted optional input
  Attributes attrs;
  std::vector<std::string> fused;
  bool removed = false;
  std::string tactic;
  float time_ms = 0;
  int64_t scratch_bytes = 0, scratch_offset = 0;
  int stream = 0;  // set by streams.cpp
};

struct BuildPlan {
  std::vector<BTensor> tensors;
  std::vector<BLayer> layers;
  std::vector<int> inputs, outputs;
  Precision precision = Precision::FP32;
  bool tf32 = false;
  int64_t activation_bytes = 0, arena_bytes = 0, eliminated = 0;
  std::vector<uint8_t> weights;  // assembled by emit (offsets set on weight tensors)

  int add_tensor(BTensor t) {
    tensors.push_back(std::move(t));
    return static_cast<int>(tensors.size()) - 1;
  }
};

// The layer ops a graph conv lowers to (lower.cpp): the first conv, on the image, has kernels of its own.
inline bool is_fp16_conv_op(const std::string& op) { return op == "kestrel.Conv" || op == "kestrel.ConvStem"; }
inline bool is_int8_conv_op(const std::string& op) { return op == "kestrel.ConvInt8" || op == "kestrel.ConvInt8Stem"; }

// INT8 engines: the values stored as int8 codes (int8_domain.cpp), with their scale.
std::map<std::string, float> int8_values(const Graph& g);
BuildPlan lower(const Graph& g, const BuilderConfig& cfg);
// Folds a kestrel.QuantizeInt8 into the INT8 conv producing its input when nothing else reads the
// fp16 value (requantize.cpp); returns how many.
int fold_requantize(BuildPlan& p);
void plan_views(BuildPlan& p);
// Assigns strides, roots and element offsets of every tensor (views resolved).
void resolve_layout(BuildPlan& p);
// Lays weights out in one blob (256-byte aligned) and sets their offsets.
void assemble_weights(BuildPlan& p);
// The live layers' indices in execution order, and for each (by position in that order) the positions
// of the earlier layers it depends on through the tensors it reads and writes.
std::vector<int> live_layers(const BuildPlan& p);
std::vector<std::vector<int>> layer_dependencies(const BuildPlan& p, const std::vector<int>& order);
// Sets every live layer's stream (0 .. max_aux_streams), after tuning and before pack_arena.
void assign_streams(BuildPlan& p, int max_aux_streams);
// Buffers of layers on different streams are kept until every later layer follows their users.
void pack_arena(BuildPlan& p);
rt::Plan emit(const BuildPlan& p, rt::EngineHeader header);

// The metadata the CUDA layers see for a build tensor (after resolve_layout).
cuda::TensorMeta meta_of(const BTensor& t);
// meta_of every tensor of the plan, by tensor id.
std::vector<cuda::TensorMeta> metas_of(const BuildPlan& p);
// What a CUDA layer is made from: the plan layer with its tensors' metadata (`metas`, from metas_of,
// must outlive the spec).
cuda::LayerSpec layer_spec(const BuildPlan& p, const BLayer& l, const std::vector<cuda::TensorMeta>& metas);

}  // namespace kestrel::bld
