#pragma once
// The engine's in-memory plan: what the builder decides and the runtime executes. Every tensor has
// its final dtype, logical shape, strides (in elements) and a place (arena offset, weights offset or
// an I/O slot), so views (Concat/Split/Slice/Reshape eliminated) are plain strided tensors here and the
// runtime needs no knowledge of how they came about.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "kestrel/graph.h"
#include "kestrel/runtime.h"

namespace kestrel::rt {

enum class Storage : uint8_t { Arena = 0, Weights = 1, Input = 2, Output = 3 };

struct PlanTensor {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  std::vector<int64_t> strides;  // elements, one per dim
  Storage storage = Storage::Arena;
  int32_t slot = -1;             // I/O index for Input/Output
  int64_t offset = 0;            // bytes into the arena or the weights blob
  bool channels_last = false;    // rank-4 tensor stored NHWC (informational: strides say it all)
};

struct PlanLayer {
  std::string name, op;
  std::vector<int32_t> inputs, outputs;  // tensor ids; -1 marks an omitted optional input
  Attributes attrs;
  std::string tactic;
  std::vector<std::string> fused;
  float time_ms = 0;
  int64_t scratch_bytes = 0;
  int64_t scratch_offset = 0;  // bytes into the arena
  int32_t stream = 0;          // 0: the stream the plan is enqueued on; k > 0: auxiliary stream k
};

struct EngineHeader {
  uint32_t format_version = 0;
  int32_t cc_major = 0, cc_minor = 0;
  std::string kestrel_version, gpu_name, model_name, model_hash, build_options;
  int32_t cuda_runtime_version = 0, cudnn_version = 0;
  Precision precision = Precision::FP32;
  bool tf32 = false;
  int64_t batch = 0, imgsz = 0;
  std::map<std::string, std::string> metadata;  // the model's (Ultralytics names / stride / imgsz)
};

// One batch's plan.
struct Plan {
  EngineHeader header;  // header.batch: this plan's batch
  std::vector<PlanTensor> tensors;
  std::vector<PlanLayer> layers;
  std::vector<int32_t> inputs, outputs;  // tensor ids of the I/O slots
  int64_t arena_bytes = 0, activation_bytes = 0, eliminated_copies = 0;
  std::vector<uint8_t> weights;          // the blob Storage::Weights offsets point into
};

// What an engine file holds: one plan per batch it was tuned for (ascending), all of one model,
// precision and set of I/O names; the engine runs any batch in [min_batch, max_batch] as a sequence
// of these plans on consecutive slices of the batch (see batch_split.h). Plans whose weights are the
// same bytes share them (in the file and on the device).
struct EngineFile {
  std::vector<Plan> plans;
  int64_t min_batch = 0, opt_batch = 0, max_batch = 0;
};
// A file of one plan: its batch is min, opt and max.
EngineFile single_plan_file(Plan plan);

// File layout (little endian): a fixed prefix that every version keeps, so an old or foreign engine
// is recognized and refused by name:
//   0  char[8]  magic "KESTRLEN"
//   8  u32      format version
//   12 i32      compute capability major
//   16 i32      compute capability minor
//   20 u64      total file size in bytes
//   28 ...      header strings, the batch profile, then each plan's body (see plan_io.cpp)
//   end-8 u64   FNV-1a 64 of every byte before it
constexpr char kEngineMagic[8] = {'K', 'E', 'S', 'T', 'R', 'L', 'E', 'N'};
constexpr uint32_t kFormatVersion = 3;
constexpr size_t kOffsetFormatVersion = 8;
constexpr size_t kOffsetCcMajor = 12;
constexpr size_t kOffsetCcMinor = 16;
constexpr size_t kOffsetFileSize = 20;
// Auxiliary streams a plan may use (PlanLayer::stream < this).
constexpr int32_t kMaxStreams = 64;

std::vector<uint8_t> serialize_engine(const EngineFile& file);
std::vector<uint8_t> serialize_plan(const Plan& plan);  // a file of this one plan
// Parses and checks the file (magic, size, format version, checksum, every id, extent and the batch
// profile). The compute capability is not compared here (the Runtime does it against the device),
// but is checked before the checksum so a foreign engine is reported as such.
EngineFile deserialize_engine(const void* data, size_t size);
// The engine as inspect shows it: the header and profile, the I/O at max_batch, the layers of the
// plan tuned for opt_batch.
EngineInfo engine_info(const EngineFile& file);
EngineInfo plan_info(const Plan& plan);

uint64_t fnv1a64(const void* data, size_t size, uint64_t seed = 1469598103934665603ull);

// "f16 nhwc [1,16,320,320]" for inspect.
std::string describe_tensor(const PlanTensor& t);
bool is_dense_row_major(const PlanTensor& t);

}  // namespace kestrel::rt
