// Engine file (de)serialization. A small tagged binary format; every read is bounds-checked so that a
// truncated or corrupt file ends in one kestrel::Error, never a crash.
#include <algorithm>
#include <cstring>

#include "kestrel/version.h"
#include "runtime/plan.h"

namespace kestrel::rt {

uint64_t fnv1a64(const void* data, size_t size, uint64_t h) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

class Writer {
 public:
  std::vector<uint8_t> buf;
  template <typename T> void pod(const T& v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    buf.insert(buf.end(), p, p + sizeof(T));
  }
  void bytes(const void* p, size_t n) {
    pod<uint64_t>(n);
    const auto* b = static_cast<const uint8_t*>(p);
    buf.insert(buf.end(), b, b + n);
  }
  void str(const std::string& s) { bytes(s.data(), s.size()); }
  void ints(const std::vector<int64_t>& v) { bytes(v.data(), v.size() * sizeof(int64_t)); }
  void ids(const std::vector<int32_t>& v) { bytes(v.data(), v.size() * sizeof(int32_t)); }
  void strs(const std::vector<std::string>& v) {
    pod<uint64_t>(v.size());
    for (auto& s : v) str(s);
  }
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  template <typename T> T pod() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::pair<const uint8_t*, size_t> bytes() {
    const uint64_t n = pod<uint64_t>();
    need(n);
    const uint8_t* p = p_ + pos_;
    pos_ += n;
    return {p, static_cast<size_t>(n)};
  }
  std::string str() {
    auto [p, n] = bytes();
    return std::string(reinterpret_cast<const char*>(p), n);
  }
  template <typename T> std::vector<T> vec() {
    auto [p, n] = bytes();
    if (n % sizeof(T)) corrupt("misaligned array");
    std::vector<T> v(n / sizeof(T));
    if (n) std::memcpy(v.data(), p, n);
    return v;
  }
  std::vector<std::string> strs() {
    const uint64_t n = pod<uint64_t>();
    if (n > n_) corrupt("bad list length");
    std::vector<std::string> v;
    for (uint64_t i = 0; i < n; ++i) v.push_back(str());
    return v;
  }
  // A record count, bounded by `limit` and by the bytes left (each record takes at least
  // `min_bytes` of them): a corrupt count must not allocate gigabytes before the reads fail.
  size_t count(size_t limit = 1u << 24, size_t min_bytes = 1) {
    const uint64_t n = pod<uint64_t>();
    if (n > limit || n > (n_ - pos_) / min_bytes) corrupt("bad count");
    return static_cast<size_t>(n);
  }
  [[noreturn]] void corrupt(const char* what) const {
    fail("engine file is corrupt (", what, " at byte ", pos_, " of ", n_, ")");
  }

 private:
  void need(uint64_t k) const {
    if (k > n_ - pos_) fail("engine file is truncated or corrupt (needs ", k, " more bytes at byte ", pos_, " of ", n_, ")");
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

enum AttrTag : uint8_t { kInt = 0, kFloat, kString, kInts, kFloats, kStrings, kTensor };

void write_tensor(Writer& w, const HostTensor& t) {
  w.pod<uint8_t>(static_cast<uint8_t>(t.dtype()));
  w.ints(t.shape());
  w.bytes(t.raw(), t.empty() ? 0 : t.nbytes());
}

HostTensor read_tensor(Reader& r) {
  const auto dt = static_cast<DType>(r.pod<uint8_t>());
  if (static_cast<uint8_t>(dt) > static_cast<uint8_t>(DType::Bool)) r.corrupt("bad dtype");
  Shape s = r.vec<int64_t>();
  auto [p, n] = r.bytes();
  // The stored bytes must be exactly the shape's, checked before anything is allocated for it.
  int64_t bytes = static_cast<int64_t>(dtype_size(dt));
  for (int64_t d : s)
    if (d < 0 || __builtin_mul_overflow(bytes, d, &bytes)) r.corrupt("bad shape");
  if (static_cast<uint64_t>(bytes) != n) r.corrupt("tensor size mismatch");
  HostTensor t(dt, s);
  if (n) std::memcpy(t.raw(), p, n);
  return t;
}

void write_attrs(Writer& w, const Attributes& a) {
  w.pod<uint64_t>(a.all().size());
  for (auto& [k, v] : a.all()) {
    w.str(k);
    std::visit(
        [&](auto&& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t>) w.pod<uint8_t>(kInt), w.pod<int64_t>(x);
          else if constexpr (std::is_same_v<T, float>) w.pod<uint8_t>(kFloat), w.pod<float>(x);
          else if constexpr (std::is_same_v<T, std::string>) w.pod<uint8_t>(kString), w.str(x);
          else if constexpr (std::is_same_v<T, std::vector<int64_t>>) w.pod<uint8_t>(kInts), w.ints(x);
          else if constexpr (std::is_same_v<T, std::vector<float>>) w.pod<uint8_t>(kFloats), w.bytes(x.data(), x.size() * 4);
          else if constexpr (std::is_same_v<T, std::vector<std::string>>) w.pod<uint8_t>(kStrings), w.strs(x);
          else w.pod<uint8_t>(kTensor), write_tensor(w, x);
        },
        v);
  }
}

Attributes read_attrs(Reader& r) {
  Attributes a;
  const size_t n = r.count(1u << 24, 9);  // a key (8-byte length) and a tag at least
  for (size_t i = 0; i < n; ++i) {
    std::string k = r.str();
    switch (r.pod<uint8_t>()) {
      case kInt: a.set(k, r.pod<int64_t>()); break;
      case kFloat: a.set(k, r.pod<float>()); break;
      case kString: a.set(k, r.str()); break;
      case kInts: a.set(k, r.vec<int64_t>()); break;
      case kFloats: a.set(k, r.vec<float>()); break;
      case kStrings: a.set(k, r.strs()); break;
      case kTensor: a.set(k, read_tensor(r)); break;
      default: r.corrupt("bad attribute tag");
    }
  }
  return a;
}

}  // namespace

namespace {

void write_body(Writer& w, const Plan& plan) {
  w.pod<int64_t>(plan.header.batch);
  w.pod<uint64_t>(plan.tensors.size());
  for (const PlanTensor& t : plan.tensors) {
    w.str(t.name);
    w.pod<uint8_t>(static_cast<uint8_t>(t.dtype));
    w.ints(t.shape);
    w.ints(t.strides);
    w.pod<uint8_t>(static_cast<uint8_t>(t.storage));
    w.pod<int32_t>(t.slot);
    w.pod<int64_t>(t.offset);
    w.pod<uint8_t>(t.channels_last);
  }
  w.pod<uint64_t>(plan.layers.size());
  for (const PlanLayer& l : plan.layers) {
    w.str(l.name);
    w.str(l.op);
    w.ids(l.inputs);
    w.ids(l.outputs);
    write_attrs(w, l.attrs);
    w.str(l.tactic);
    w.strs(l.fused);
    w.pod<float>(l.time_ms);
    w.pod<int64_t>(l.scratch_bytes);
    w.pod<int64_t>(l.scratch_offset);
    w.pod<int32_t>(l.stream);
  }
  w.ids(plan.inputs);
  w.ids(plan.outputs);
  w.pod<int64_t>(plan.arena_bytes);
  w.pod<int64_t>(plan.activation_bytes);
  w.pod<int64_t>(plan.eliminated_copies);
}

void read_body(Reader& r, Plan& plan) {
  plan.header.batch = r.pod<int64_t>();
  plan.tensors.resize(r.count(1u << 24, 39));  // the fixed-size fields of one tensor
  for (PlanTensor& t : plan.tensors) {
    t.name = r.str();
    const uint8_t dt = r.pod<uint8_t>();
    if (dt > static_cast<uint8_t>(DType::Bool)) r.corrupt("bad dtype");
    t.dtype = static_cast<DType>(dt);
    t.shape = r.vec<int64_t>();
    t.strides = r.vec<int64_t>();
    if (t.strides.size() != t.shape.size()) r.corrupt("strides do not match shape");
    const uint8_t st = r.pod<uint8_t>();
    if (st > 3) r.corrupt("bad storage");
    t.storage = static_cast<Storage>(st);
    t.slot = r.pod<int32_t>();
    t.offset = r.pod<int64_t>();
    t.channels_last = r.pod<uint8_t>() != 0;
  }
  plan.layers.resize(r.count(1u << 24, 80));  // the fixed-size fields of one layer
  for (PlanLayer& l : plan.layers) {
    l.name = r.str();
    l.op = r.str();
    l.inputs = r.vec<int32_t>();
    l.outputs = r.vec<int32_t>();
    l.attrs = read_attrs(r);
    l.tactic = r.str();
    l.fused = r.strs();
    l.time_ms = r.pod<float>();
    l.scratch_bytes = r.pod<int64_t>();
    l.scratch_offset = r.pod<int64_t>();
    l.stream = r.pod<int32_t>();
  }
  plan.inputs = r.vec<int32_t>();
  plan.outputs = r.vec<int32_t>();
  plan.arena_bytes = r.pod<int64_t>();
  plan.activation_bytes = r.pod<int64_t>();
  plan.eliminated_copies = r.pod<int64_t>();
}

// Cross-checks, so a consistent-looking but wrong file still cannot index out of range.
void check_plan(const Reader& r, const Plan& plan) {
  const int32_t nt = static_cast<int32_t>(plan.tensors.size());
  auto check_id = [&](int32_t id, bool allow_none) {
    if (id < (allow_none ? -1 : 0) || id >= nt) r.corrupt("tensor id out of range");
  };
  for (auto& l : plan.layers) {
    for (int32_t id : l.inputs) check_id(id, true);
    for (int32_t id : l.outputs) check_id(id, false);
    int64_t scratch_end = 0;
    if (l.scratch_bytes < 0 || l.scratch_offset < 0 ||
        __builtin_add_overflow(l.scratch_offset, l.scratch_bytes, &scratch_end) || scratch_end > plan.arena_bytes)
      r.corrupt("scratch outside the arena");
    if (l.stream < 0 || l.stream >= kMaxStreams) r.corrupt("stream out of range");
  }
  for (int32_t id : plan.inputs) check_id(id, false);
  for (int32_t id : plan.outputs) check_id(id, false);
  for (const PlanTensor& t : plan.tensors) {
    int64_t span = 1;  // highest element index + 1
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 0 || t.strides[d] < 0) r.corrupt("negative extent");
      if (t.shape[d] == 0) span = 0;
    }
    // Overflow-checked: a corrupt shape or stride must not wrap around into a small, "valid" extent.
    int64_t bytes = 0, end = 0;
    for (size_t d = 0; span && d < t.shape.size(); ++d) {
      int64_t step = 0;
      if (__builtin_mul_overflow(t.shape[d] - 1, t.strides[d], &step) || __builtin_add_overflow(span, step, &span))
        r.corrupt("tensor extent overflows");
    }
    if (__builtin_mul_overflow(span, static_cast<int64_t>(dtype_size(t.dtype)), &bytes) ||
        __builtin_add_overflow(t.offset, bytes, &end))
      r.corrupt("tensor extent overflows");
    if (t.storage == Storage::Arena && (t.offset < 0 || end > plan.arena_bytes)) r.corrupt("tensor outside the arena");
    if (t.storage == Storage::Weights && (t.offset < 0 || end > static_cast<int64_t>(plan.weights.size())))
      r.corrupt("tensor outside the weights");
    if ((t.storage == Storage::Input && (t.slot < 0 || t.slot >= static_cast<int32_t>(plan.inputs.size()))) ||
        (t.storage == Storage::Output && (t.slot < 0 || t.slot >= static_cast<int32_t>(plan.outputs.size()))))
      r.corrupt("bad I/O slot");
  }
}

// Plans after the first must run on slices of one batch: the same I/O names and dtypes, every I/O
// tensor dense with the plan's batch leading and the same shape per image.
void check_profile(const Reader& r, const EngineFile& f) {
  if (f.min_batch < 1 || f.min_batch > f.opt_batch || f.opt_batch > f.max_batch) r.corrupt("bad batch profile");
  const Plan& first = f.plans.front();
  if (first.header.batch != f.min_batch || f.plans.back().header.batch != f.max_batch)
    r.corrupt("plans do not span the batch profile");
  for (size_t k = 0; k < f.plans.size(); ++k) {
    const Plan& p = f.plans[k];
    if (k > 0 && p.header.batch <= f.plans[k - 1].header.batch) r.corrupt("plan batches not ascending");
    if (f.plans.size() == 1) continue;
    if (p.inputs.size() != first.inputs.size() || p.outputs.size() != first.outputs.size())
      r.corrupt("plans with different inputs or outputs");
    auto same_io = [&](int32_t a, int32_t b) {
      const PlanTensor &x = p.tensors[a], &y = first.tensors[b];
      if (x.name != y.name || x.dtype != y.dtype || x.shape.empty() || y.shape.empty() || x.shape[0] != p.header.batch ||
          y.shape[0] != first.header.batch || !std::equal(x.shape.begin() + 1, x.shape.end(), y.shape.begin() + 1, y.shape.end()) ||
          !is_dense_row_major(x))
        r.corrupt("plans whose inputs or outputs are not slices of one batch");
    };
    for (size_t i = 0; i < p.inputs.size(); ++i) same_io(p.inputs[i], first.inputs[i]);
    for (size_t i = 0; i < p.outputs.size(); ++i) same_io(p.outputs[i], first.outputs[i]);
  }
}

}  // namespace

EngineFile single_plan_file(Plan plan) {
  EngineFile f;
  f.min_batch = f.opt_batch = f.max_batch = plan.header.batch;
  f.plans.push_back(std::move(plan));
  return f;
}

std::vector<uint8_t> serialize_plan(const Plan& plan) { return serialize_engine(single_plan_file(plan)); }

std::vector<uint8_t> serialize_engine(const EngineFile& file) {
  KESTREL_CHECK(!file.plans.empty(), "internal: an engine without a plan");
  Writer w;
  const EngineHeader& h = file.plans.back().header;
  w.buf.insert(w.buf.end(), kEngineMagic, kEngineMagic + 8);
  w.pod<uint32_t>(kFormatVersion);
  w.pod<int32_t>(h.cc_major);
  w.pod<int32_t>(h.cc_minor);
  w.pod<uint64_t>(0);  // file size, patched below
  w.str(h.kestrel_version);
  w.str(h.gpu_name);
  w.str(h.model_name);
  w.str(h.model_hash);
  w.str(h.build_options);
  w.pod<int32_t>(h.cuda_runtime_version);
  w.pod<int32_t>(h.cudnn_version);
  w.pod<uint8_t>(static_cast<uint8_t>(h.precision));
  w.pod<uint8_t>(h.tf32);
  w.pod<int64_t>(h.imgsz);
  w.pod<uint64_t>(h.metadata.size());
  for (auto& [k, v] : h.metadata) w.str(k), w.str(v);
  w.pod<int64_t>(file.min_batch);
  w.pod<int64_t>(file.opt_batch);
  w.pod<int64_t>(file.max_batch);
  w.pod<uint64_t>(file.plans.size());
  for (size_t k = 0; k < file.plans.size(); ++k) {
    const Plan& p = file.plans[k];
    write_body(w, p);
    const bool shared = k > 0 && p.weights == file.plans[0].weights;
    w.pod<uint8_t>(shared);
    if (!shared) w.bytes(p.weights.data(), p.weights.size());
  }

  const uint64_t total = w.buf.size() + sizeof(uint64_t);
  std::memcpy(w.buf.data() + kOffsetFileSize, &total, sizeof(total));
  const uint64_t sum = fnv1a64(w.buf.data(), w.buf.size());
  w.pod<uint64_t>(sum);
  return std::move(w.buf);
}

EngineFile deserialize_engine(const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (size < 8 || std::memcmp(p, kEngineMagic, 8) != 0)
    fail("not a Kestrel engine file (bad magic; build one with `kestrel build MODEL -o FILE.engine`)");
  if (size < 36) fail("engine file is truncated (", size, " bytes)");
  uint32_t version;
  std::memcpy(&version, p + kOffsetFormatVersion, 4);
  if (version != kFormatVersion)
    fail("engine format version ", version, " is not supported by this runtime (it reads format version ", kFormatVersion,
         "); rebuild the engine with this Kestrel (", KESTREL_VERSION_STRING, ")");
  uint64_t declared;
  std::memcpy(&declared, p + kOffsetFileSize, 8);
  if (declared != size)
    fail("engine file is truncated or has trailing bytes (", size, " bytes, the header says ", declared, ")");
  uint64_t stored;
  std::memcpy(&stored, p + size - 8, 8);
  if (fnv1a64(p, size - 8) != stored) fail("engine file is corrupt (checksum mismatch)");

  Reader r(p, size - 8);
  EngineHeader h;
  for (int i = 0; i < 8; ++i) r.pod<char>();
  h.format_version = r.pod<uint32_t>();
  h.cc_major = r.pod<int32_t>();
  h.cc_minor = r.pod<int32_t>();
  r.pod<uint64_t>();
  h.kestrel_version = r.str();
  h.gpu_name = r.str();
  h.model_name = r.str();
  h.model_hash = r.str();
  h.build_options = r.str();
  h.cuda_runtime_version = r.pod<int32_t>();
  h.cudnn_version = r.pod<int32_t>();
  const uint8_t prec = r.pod<uint8_t>();
  if (prec > 2) r.corrupt("bad precision");
  h.precision = static_cast<Precision>(prec);
  h.tf32 = r.pod<uint8_t>() != 0;
  h.imgsz = r.pod<int64_t>();
  const size_t nmeta = r.count(1u << 16);
  for (size_t i = 0; i < nmeta; ++i) {
    std::string k = r.str();
    h.metadata[k] = r.str();
  }
  EngineFile f;
  f.min_batch = r.pod<int64_t>();
  f.opt_batch = r.pod<int64_t>();
  f.max_batch = r.pod<int64_t>();
  f.plans.resize(r.count(1u << 10, 64));
  if (f.plans.empty()) r.corrupt("no plan");
  for (size_t k = 0; k < f.plans.size(); ++k) {
    Plan& plan = f.plans[k];
    plan.header = h;
    read_body(r, plan);
    if (r.pod<uint8_t>()) {
      if (k == 0) r.corrupt("the first plan shares weights");
      plan.weights = f.plans[0].weights;
    } else {
      auto [wp, wn] = r.bytes();
      plan.weights.assign(wp, wp + wn);
    }
    check_plan(r, plan);
  }
  check_profile(r, f);
  return f;
}

std::string describe_tensor(const PlanTensor& t) {
  std::string layout = t.channels_last ? "nhwc" : "nchw";
  if (t.shape.size() != 4) layout = "rowmajor";
  if (!t.channels_last && !is_dense_row_major(t)) layout = "strided";
  if (t.channels_last) {
    // A channel slice of a wider NHWC buffer (a concat elimination) shows its pixel stride.
    if (t.shape.size() == 4 && t.strides[3] != t.shape[1]) layout = "nhwc/" + std::to_string(t.strides[3]);
  }
  return std::string(dtype_name(t.dtype)) + " " + layout + " " + shape_str(t.shape);
}

bool is_dense_row_major(const PlanTensor& t) {
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(t.shape.size()) - 1; d >= 0; --d) {
    if (t.shape[d] != 1 && t.strides[d] != s) return false;
    s *= t.shape[d];
  }
  return true;
}

EngineInfo plan_info(const Plan& plan) {
  EngineInfo e;
  const EngineHeader& h = plan.header;
  e.format_version = h.format_version ? h.format_version : kFormatVersion;
  e.kestrel_version = h.kestrel_version;
  e.gpu_name = h.gpu_name;
  e.model_name = h.model_name;
  e.model_hash = h.model_hash;
  e.build_options = h.build_options;
  e.cc_major = h.cc_major;
  e.cc_minor = h.cc_minor;
  e.cuda_runtime_version = h.cuda_runtime_version;
  e.cudnn_version = h.cudnn_version;
  e.precision = h.precision;
  e.tf32 = h.tf32;
  e.batch = e.min_batch = e.opt_batch = e.max_batch = h.batch;
  e.plans.push_back({h.batch, static_cast<int64_t>(plan.layers.size()), plan.arena_bytes});
  e.imgsz = h.imgsz;
  e.metadata = h.metadata;
  for (int32_t id : plan.inputs) e.inputs.push_back({plan.tensors[id].name, plan.tensors[id].dtype, plan.tensors[id].shape});
  for (int32_t id : plan.outputs) e.outputs.push_back({plan.tensors[id].name, plan.tensors[id].dtype, plan.tensors[id].shape});
  for (const PlanLayer& l : plan.layers) {
    EngineLayerInfo li;
    li.name = l.name;
    li.op = l.op;
    li.tactic = l.tactic;
    li.fused = l.fused;
    li.time_ms = l.time_ms;
    li.scratch_bytes = l.scratch_bytes;
    li.stream = l.stream;
    li.precision = l.attrs.s("kestrel_precision", "");
    li.precision_reason = l.attrs.s("kestrel_precision_reason", "");
    for (int32_t id : l.inputs) li.inputs.push_back(id < 0 ? "-" : describe_tensor(plan.tensors[id]));
    for (int32_t id : l.outputs) li.outputs.push_back(describe_tensor(plan.tensors[id]));
    e.layers.push_back(std::move(li));
  }
  e.arena_bytes = plan.arena_bytes;
  e.activation_bytes = plan.activation_bytes;
  e.weight_bytes = static_cast<int64_t>(plan.weights.size());
  e.eliminated_copies = plan.eliminated_copies;
  return e;
}

EngineInfo engine_info(const EngineFile& file) {
  const Plan* opt = &file.plans.back();
  for (const Plan& p : file.plans)
    if (p.header.batch == file.opt_batch) opt = &p;
  EngineInfo e = plan_info(*opt);
  const Plan& max = file.plans.back();
  e.batch = file.max_batch;
  e.min_batch = file.min_batch, e.opt_batch = file.opt_batch, e.max_batch = file.max_batch;
  e.inputs.clear(), e.outputs.clear();
  for (int32_t id : max.inputs) e.inputs.push_back({max.tensors[id].name, max.tensors[id].dtype, max.tensors[id].shape});
  for (int32_t id : max.outputs) e.outputs.push_back({max.tensors[id].name, max.tensors[id].dtype, max.tensors[id].shape});
  e.arena_bytes = e.activation_bytes = e.weight_bytes = 0;
  e.plans.clear();
  for (size_t k = 0; k < file.plans.size(); ++k) {
    const Plan& p = file.plans[k];
    e.plans.push_back({p.header.batch, static_cast<int64_t>(p.layers.size()), p.arena_bytes});
    e.arena_bytes = std::max(e.arena_bytes, p.arena_bytes);  // one arena serves every plan
    e.activation_bytes = std::max(e.activation_bytes, p.activation_bytes);
    if (k == 0 || p.weights != file.plans[0].weights) e.weight_bytes += static_cast<int64_t>(p.weights.size());
  }
  return e;
}

const char* precision_name_impl(Precision p) {
  switch (p) {
    case Precision::FP16: return "fp16";
    case Precision::INT8: return "int8";
    default: return "fp32";
  }
}

}  // namespace kestrel::rt

namespace kestrel {
const char* precision_name(Precision p) { return rt::precision_name_impl(p); }
}  // namespace kestrel
