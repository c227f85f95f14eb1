// The `kestrel._kestrel` extension: Detector, Engine and val over the C++ library. The Python layer
// (kestrel/__init__.py) shapes the results as Ultralytics' (r.boxes.xyxy, r.names, r.speed).
// On a CUDA engine, Engine takes CUDA tensors (torch, cupy, DLPack) in place, on the caller's stream.
// The GIL is released while images are decoded and engines run; kestrel errors become kestrel.Error
// (kestrel.UsageError for wrong arguments) with the CLI's one-line message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "kestrel/batch_profile.h"
#include "kestrel/detector.h"
#include "kestrel/eval.h"
#include "kestrel/image.h"
#include "kestrel/model.h"
#include "kestrel/pipeline.h"
#include "kestrel/version.h"
#ifdef KESTREL_HAS_CUDA
#include <cuda_runtime_api.h>

#include <filesystem>

#include "kestrel/cuda_model.h"
#include "kestrel/runtime.h"
#endif

namespace py = pybind11;

namespace {

// str or os.PathLike -> str (pybind11's std::string caster takes str only).
std::string fspath(const py::object& p) { return py::str(py::module_::import("os").attr("fspath")(p)); }

kestrel::ModelOptions model_options(const std::string& backend, bool fp16, bool int8, int64_t batch, int64_t imgsz,
                                    const py::object& timing_cache_path, const py::object& calib_path,
                                    const py::object& calib_cache_path, bool verbose) {
  const std::string timing_cache = fspath(timing_cache_path), calib = fspath(calib_path),
                    calib_cache = fspath(calib_cache_path);
  if (fp16 && int8) throw kestrel::UsageError("fp16 and int8 are exclusive (int8 runs its float layers in fp16)");
  if (batch < 0) throw kestrel::UsageError("batch must be positive (0: the model's own), not " + std::to_string(batch));
  if (imgsz < 0) throw kestrel::UsageError("imgsz must be positive (0: the model's own), not " + std::to_string(imgsz));
  if (!int8 && (!calib.empty() || !calib_cache.empty()))
    throw kestrel::UsageError("calib and calib_cache are INT8 settings: pass int8=True");
  kestrel::ModelOptions o;
  o.backend = kestrel::parse_backend(backend);
  o.precision = int8 ? "int8" : fp16 ? "fp16" : "fp32";
  o.batch = batch;
  o.imgsz = imgsz;
  o.timing_cache = timing_cache;
  o.int8.calib = calib;
  o.int8.cache = calib_cache;
  o.int8.progress = verbose;
  o.verbose = verbose;
  return o;
}

py::dict speed_dict(const kestrel::StageTimes& t) {
  py::dict d;
  d["preprocess"] = t.preprocess_ms;
  d["inference"] = t.inference_ms;
  d["postprocess"] = t.postprocess_ms;
  return d;
}

// One image's result as plain values: (xyxy (N,4) float32, conf (N,) float32, cls (N,) int64,
// (height, width), speed dict).
py::tuple to_python(const kestrel::Detections& d) {
  const auto n = static_cast<py::ssize_t>(d.boxes.size());
  py::array_t<float> xyxy({n, py::ssize_t{4}});
  py::array_t<float> conf(n);
  py::array_t<int64_t> cls(n);
  auto x = xyxy.mutable_unchecked<2>();
  auto c = conf.mutable_unchecked<1>();
  auto k = cls.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    const auto& b = d.boxes[static_cast<size_t>(i)];
    x(i, 0) = b.x1, x(i, 1) = b.y1, x(i, 2) = b.x2, x(i, 3) = b.y2;
    c(i) = b.score;
    k(i) = b.cls;
  }
  return py::make_tuple(xyxy, conf, cls, py::make_tuple(d.height, d.width), speed_dict(d.speed));
}

// A numpy image as a view of its pixels (the array is kept alive by the caller's list).
kestrel::ImageView view_of(const py::array& a, size_t index, bool bgr) {
  const std::string where = "image " + std::to_string(index);
  if (!a.dtype().is(py::dtype::of<uint8_t>()))
    throw kestrel::UsageError(where + ": a numpy image must be uint8 (got " + std::string(py::str(a.dtype())) + ")");
  if (a.ndim() != 3 || a.shape(2) != 3)
    throw kestrel::UsageError(where + ": a numpy image must be HxWx3 (got shape " +
                              std::string(py::str(py::tuple(py::cast(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()))))) + ")");
  if (a.strides(2) != 1 || a.strides(1) != 3 || a.strides(0) < 3 * a.shape(1))
    throw kestrel::UsageError(where + ": the numpy image's pixels must be contiguous (use numpy.ascontiguousarray)");
  return kestrel::ImageView{static_cast<const uint8_t*>(a.data()), static_cast<int>(a.shape(1)), static_cast<int>(a.shape(0)),
                            static_cast<size_t>(a.strides(0)), bgr ? kestrel::PixelOrder::BGR : kestrel::PixelOrder::RGB};
}

class PyDetector {
 public:
  PyDetector(const py::object& model_path, const std::string& backend, bool fp16, bool int8, int64_t batch, int64_t imgsz,
      const py::object& timing_cache, const py::object& calib, const py::object& calib_cache, bool verbose) {
    const std::string model = fspath(model_path);
    kestrel::DetectorOptions o;
    static_cast<kestrel::ModelOptions&>(o) =
        model_options(backend, fp16, int8, batch, imgsz, timing_cache, calib, calib_cache, verbose);
    py::gil_scoped_release release;
    det_ = std::make_unique<kestrel::Detector>(model, o);
  }

  // `items`: str / os.PathLike paths, bytes (encoded JPEG/PNG) or numpy uint8 HxWx3 arrays, mixed.
  // Runs of one kind go to the Detector together (batched); the results keep the input order.
  py::list detect(const py::list& items, float conf, double iou, int max_det, bool agnostic, const std::string& channels) {
    if (channels != "rgb" && channels != "bgr")
      throw kestrel::UsageError("channels must be 'rgb' or 'bgr', not '" + channels + "'");
    kestrel::DetectOptions o;
    o.conf = conf;
    o.iou = iou;
    o.max_det = max_det;
    o.agnostic = agnostic;
    enum Kind { Path, Bytes, Array };
    const size_t n = items.size();
    std::vector<Kind> kinds(n);
    std::vector<std::string> strings(n);  // paths and encoded bytes
    std::vector<py::array> arrays(n);     // referenced until the run ends
    for (size_t i = 0; i < n; ++i) {
      py::handle it = items[i];
      if (py::isinstance<py::bytes>(it)) {
        kinds[i] = Bytes;
        strings[i] = std::string(py::reinterpret_borrow<py::bytes>(it));
      } else if (py::isinstance<py::bytearray>(it)) {
        kinds[i] = Bytes;
        strings[i].assign(PyByteArray_AsString(it.ptr()), static_cast<size_t>(PyByteArray_Size(it.ptr())));
      } else if (py::isinstance<py::array>(it)) {
        kinds[i] = Array;
        arrays[i] = py::reinterpret_borrow<py::array>(it);
      } else if (py::isinstance<py::str>(it) || py::hasattr(it, "__fspath__")) {
        kinds[i] = Path;
        strings[i] = fspath(py::reinterpret_borrow<py::object>(it));
      } else {
        throw kestrel::UsageError("image " + std::to_string(i) + ": expected a path, bytes or a numpy uint8 HxWx3 array, got " +
                                  std::string(py::str(py::type::of(it).attr("__name__"))));
      }
    }
    std::vector<kestrel::ImageView> views(n);
    for (size_t i = 0; i < n; ++i)
      if (kinds[i] == Array) views[i] = view_of(arrays[i], i, channels == "bgr");
    std::vector<kestrel::Detections> results(n);
    {
      py::gil_scoped_release release;
      for (size_t first = 0; first < n;) {
        size_t last = first;
        while (last < n && kinds[last] == kinds[first]) ++last;
        std::vector<kestrel::Detections> run;
        if (kinds[first] == Path) {
          run = det_->detect(std::vector<std::string>(strings.begin() + first, strings.begin() + last), o);
        } else if (kinds[first] == Bytes) {
          std::vector<std::span<const uint8_t>> spans;
          for (size_t i = first; i < last; ++i)
            spans.emplace_back(reinterpret_cast<const uint8_t*>(strings[i].data()), strings[i].size());
          run = det_->detect_encoded(spans, o);
        } else {
          run = det_->detect(std::span<const kestrel::ImageView>(views.data() + first, last - first), o);
        }
        for (size_t i = first; i < last; ++i) results[i] = std::move(run[i - first]);
        first = last;
      }
    }
    py::list out;
    for (auto& r : results) out.append(to_python(r));
    return out;
  }

  py::dict names() const {
    py::dict d;
    for (size_t i = 0; i < det_->names().size(); ++i) d[py::int_(i)] = det_->names()[i];
    return d;
  }
  const kestrel::Detector& get() const { return *det_; }

 private:
  std::unique_ptr<kestrel::Detector> det_;
};

// ---------------------------------------------------------------------------------------------------
// Engine on CUDA tensors. An input that exposes __cuda_array_interface__ (torch, cupy, numba) or
// __dlpack__ with a CUDA device goes to ExecutionContext::enqueue as it is: its device pointer, on the
// caller's stream, no copy. Its description is checked first (float32, the engine's shape, contiguous),
// without touching the memory, so a wrong tensor is a UsageError on any engine, and a pointer that is
// not device memory of the engine's GPU never reaches a kernel (a fault there would end the process's
// CUDA context).

// DLPack's C ABI (dlpack.h, v0.8 and later; the layout is frozen), declared here to need no header.
namespace dl {
enum : int32_t { kCPU = 1, kCUDA = 2, kCUDAHost = 3, kCUDAManaged = 13 };
enum : uint8_t { kInt = 0, kUInt = 1, kFloat = 2, kBfloat = 4 };
struct Device {
  int32_t device_type, device_id;
};
struct DataType {
  uint8_t code, bits;
  uint16_t lanes;
};
struct Tensor {
  void* data;
  Device device;
  int32_t ndim;
  DataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; null: row-major contiguous
  uint64_t byte_offset;
};
struct ManagedTensor {
  Tensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(ManagedTensor*);
};
std::string device_name(int32_t t) {
  switch (t) {
    case kCPU: return "cpu";
    case kCUDA: return "cuda";
    case kCUDAHost: return "cuda pinned host memory";
    case kCUDAManaged: return "cuda managed";
    default: return "type " + std::to_string(t);
  }
}
}  // namespace dl

// A Python exception as one line ("RuntimeError: ..."), for messages that wrap it: its type and
// message only (pybind11's what() may append the traceback).
std::string one_line(const py::error_already_set& e) {
  std::string s = std::string(py::str(e.type().attr("__name__"))) + ": " + std::string(py::str(e.value()));
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

std::string hex(uintptr_t p) {
  char b[32];
  std::snprintf(b, sizeof(b), "0x%llx", static_cast<unsigned long long>(p));
  return b;
}

std::string tuple_str(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// Row-major contiguity of `strides` (in bytes) for `shape` of 4-byte elements; a dimension of extent 1
// may have any stride (torch reports arbitrary ones there).
bool contiguous(const kestrel::Shape& shape, const std::vector<int64_t>& strides) {
  int64_t expect = 4;
  for (size_t i = shape.size(); i-- > 0;) {
    if (shape[i] != 1 && strides[i] != expect) return false;
    expect *= shape[i];
  }
  return true;
}

// A device buffer described by one of the two protocols, checked against what the engine takes.
struct DeviceBuffer {
  uintptr_t ptr = 0;
  bool has_stream = false;  // __cuda_array_interface__ named the stream its data is ready on
  uintptr_t stream = 0;     // ... as the protocol numbers it (1: legacy default, 2: per-thread default)
  py::object keep;          // a DLPack capsule: the producer's memory stays ours until the call ends
  int64_t batch = 0;        // its leading dimension
};

// The batches an engine takes: one (min == max == 0: exactly `want`), or a batch profile's range.
struct BatchRange {
  int64_t min = 0, max = 0;
};

std::vector<int64_t> int_tuple(const py::handle& h, const std::string& what, const char* key) {
  if (!py::isinstance<py::tuple>(h) && !py::isinstance<py::list>(h))
    throw kestrel::UsageError(what + ": its __cuda_array_interface__['" + key + "'] is not a tuple of ints");
  std::vector<int64_t> v;
  for (py::handle e : py::reinterpret_borrow<py::sequence>(h)) {
    if (!py::isinstance<py::int_>(e))
      throw kestrel::UsageError(what + ": its __cuda_array_interface__['" + key + "'] is not a tuple of ints");
    v.push_back(e.cast<int64_t>());
  }
  return v;
}

// `want` at the largest batch; with a batch range the leading dimension may be any batch in it.
void check_shape(const kestrel::Shape& got, const kestrel::Shape& want, const std::string& what, BatchRange r = {}) {
  if (got == want) return;
  const bool same_image = got.size() == want.size() && !got.empty() && std::equal(got.begin() + 1, got.end(), want.begin() + 1);
  if (r.max > 0 && same_image && got[0] >= r.min && got[0] <= r.max) return;
  throw kestrel::UsageError(what + " is " + kestrel::shape_str(got) + "; the engine " + (what == "out" ? "writes " : "takes ") +
                            kestrel::shape_str(want) + " float32" +
                            (r.max > 0 ? " (any batch from " + std::to_string(r.min) + " to " + std::to_string(r.max) + ")"
                                       : std::string()));
}

// `cai`: the object's __cuda_array_interface__ (already read). Checks the description only.
DeviceBuffer parse_cai(const py::object& cai, const std::string& what, const kestrel::Shape& want, bool writable,
                       BatchRange range = {}) {
  if (!py::isinstance<py::dict>(cai)) throw kestrel::UsageError(what + ": its __cuda_array_interface__ is not a dict");
  const auto d = py::reinterpret_borrow<py::dict>(cai);
  auto get = [&](const char* k) -> py::object {
    PyObject* v = PyDict_GetItemString(d.ptr(), k);  // borrowed; null when absent
    return v ? py::reinterpret_borrow<py::object>(v) : py::none();
  };
  for (const char* k : {"typestr", "shape", "data"})
    if (get(k).is_none()) throw kestrel::UsageError(what + ": its __cuda_array_interface__ has no '" + k + "'");
  const py::object typestr = get("typestr");
  if (!py::isinstance<py::str>(typestr)) throw kestrel::UsageError(what + ": its __cuda_array_interface__['typestr'] is not a str");
  const std::string ts = typestr.cast<std::string>();
  if (ts != "<f4" && ts != "=f4")
    throw kestrel::UsageError(what + " has typestr '" + ts + "'; the engine takes float32 ('<f4'): convert it first (x.float())");
  const kestrel::Shape shape = int_tuple(get("shape"), what, "shape");
  check_shape(shape, want, what, range);
  if (!get("mask").is_none()) throw kestrel::UsageError(what + " is a masked array; the engine takes plain arrays");
  const py::object strides = get("strides");
  if (!strides.is_none()) {
    const std::vector<int64_t> s = int_tuple(strides, what, "strides");
    if (s.size() != shape.size() || !contiguous(shape, s))
      throw kestrel::UsageError(what + " is not contiguous (strides " + tuple_str(s) +
                                " bytes): pass a contiguous copy (x.contiguous())");
  }
  const py::object data = get("data");
  if (!py::isinstance<py::tuple>(data) || py::len(data) != 2 || !py::isinstance<py::int_>(data[py::int_(0)]))
    throw kestrel::UsageError(what + ": its __cuda_array_interface__['data'] is not a (pointer, read_only) pair");
  DeviceBuffer b;
  b.batch = shape.empty() ? 0 : shape[0];
  b.ptr = data[py::int_(0)].cast<uintptr_t>();
  if (b.ptr == 0) throw kestrel::UsageError(what + " has a null data pointer");
  if (writable && py::bool_(data[py::int_(1)])) throw kestrel::UsageError(what + " is read-only; the engine writes its output there");
  const py::object stream = get("stream");
  if (!stream.is_none()) {
    if (!py::isinstance<py::int_>(stream)) throw kestrel::UsageError(what + ": its __cuda_array_interface__['stream'] is not an int");
    b.stream = stream.cast<uintptr_t>();
    if (b.stream == 0)
      throw kestrel::UsageError(what + ": its __cuda_array_interface__['stream'] is 0, which the protocol forbids "
                                       "(1: the legacy default stream, 2: the per-thread default stream)");
    b.has_stream = true;
  }
  return b;
}

// (device_type, device_id) from __dlpack_device__().
std::pair<int32_t, int32_t> dlpack_device(const py::object& x, const std::string& what) {
  py::object r;
  try {
    r = x.attr("__dlpack_device__")();
  } catch (py::error_already_set& e) {
    throw kestrel::UsageError(what + ": __dlpack_device__() failed: " + one_line(e));
  }
  if (!py::isinstance<py::tuple>(r) || py::len(r) != 2 || !py::isinstance<py::int_>(r[py::int_(0)]) ||
      !py::isinstance<py::int_>(r[py::int_(1)]))
    throw kestrel::UsageError(what + ": __dlpack_device__() did not return a (device_type, device_id) pair of ints");
  return {r[py::int_(0)].cast<int32_t>(), r[py::int_(1)].cast<int32_t>()};
}

// The capsule of x.__dlpack__(stream=stream): the producer makes its data ready on `stream` (DLPack's
// numbering, the same as __cuda_array_interface__'s) before the engine's work there.
DeviceBuffer parse_dlpack(const py::object& x, const std::string& what, const kestrel::Shape& want, uintptr_t stream,
                          int device, BatchRange range = {}) {
  DeviceBuffer b;
  try {
    b.keep = x.attr("__dlpack__")(py::arg("stream") = stream);
  } catch (py::error_already_set& e) {
    throw kestrel::UsageError(what + ": __dlpack__() failed: " + one_line(e));
  }
  if (!PyCapsule_IsValid(b.keep.ptr(), "dltensor"))
    throw kestrel::UsageError(what + ": __dlpack__() did not return an unused DLPack capsule ('dltensor')");
  const auto* m = static_cast<const dl::ManagedTensor*>(PyCapsule_GetPointer(b.keep.ptr(), "dltensor"));
  const dl::Tensor& t = m->dl_tensor;
  if (t.device.device_type != dl::kCUDA && t.device.device_type != dl::kCUDAManaged)
    throw kestrel::UsageError(what + " is on the " + dl::device_name(t.device.device_type) +
                              " device (DLPack); this CUDA engine takes CUDA tensors or numpy arrays");
  if (t.device.device_id != device)
    throw kestrel::UsageError(what + " is on CUDA device " + std::to_string(t.device.device_id) +
                              "; the engine runs on device " + std::to_string(device));
  if (t.dtype.code != dl::kFloat || t.dtype.bits != 32 || t.dtype.lanes != 1) {
    const char* kind = t.dtype.code == dl::kFloat ? "float" : t.dtype.code == dl::kBfloat ? "bfloat"
                       : t.dtype.code == dl::kInt ? "int" : t.dtype.code == dl::kUInt ? "uint" : "code ";
    throw kestrel::UsageError(what + " is " + kind + std::to_string(t.dtype.bits) +
                              (t.dtype.lanes != 1 ? "x" + std::to_string(t.dtype.lanes) : std::string()) +
                              "; the engine takes float32: convert it first (x.float())");
  }
  if (t.ndim < 0 || (t.ndim > 0 && !t.shape)) throw kestrel::UsageError(what + ": its DLPack tensor has no shape");
  const kestrel::Shape shape(t.shape, t.shape + t.ndim);
  check_shape(shape, want, what, range);
  if (t.strides) {
    std::vector<int64_t> bytes(t.strides, t.strides + t.ndim);
    for (auto& s : bytes) s *= 4;
    if (!contiguous(shape, bytes))
      throw kestrel::UsageError(what + " is not contiguous (strides " + tuple_str(std::vector<int64_t>(t.strides, t.strides + t.ndim)) +
                                " elements): pass a contiguous copy");
  }
  b.batch = shape.empty() ? 0 : shape[0];
  b.ptr = reinterpret_cast<uintptr_t>(t.data) + t.byte_offset;
  if (b.ptr == 0) throw kestrel::UsageError(what + " has a null data pointer");
  return b;
}

// What an argument is, from the protocols it speaks.
enum class ArgKind { Numpy, Cai, DlpackCuda, Other };
struct Arg {
  ArgKind kind = ArgKind::Other;
  py::object cai;              // Cai: the interface dict
  int32_t dl_device_type = 0;  // an object with __dlpack_device__ that is not CUDA (Other)
};

Arg classify(const py::object& x, const std::string& what) {
  Arg a;
  if (py::isinstance<py::array>(x)) {
    a.kind = ArgKind::Numpy;
    return a;
  }
  // One attribute read (torch builds the dict on every read); AttributeError is torch's answer for a
  // CPU tensor, any other error (a tensor that requires grad) is the caller's to fix.
  PyObject* cai = PyObject_GetAttrString(x.ptr(), "__cuda_array_interface__");
  if (cai) {
    a.kind = ArgKind::Cai;
    a.cai = py::reinterpret_steal<py::object>(cai);
    return a;
  }
  if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
    py::error_already_set e;
    throw kestrel::UsageError(what + ": cannot read its __cuda_array_interface__: " + one_line(e));
  }
  PyErr_Clear();
  if (py::hasattr(x, "__dlpack_device__") && py::hasattr(x, "__dlpack__")) {
    const auto [type, id] = dlpack_device(x, what);
    (void)id;
    a.kind = type == dl::kCUDA || type == dl::kCUDAManaged ? ArgKind::DlpackCuda : ArgKind::Other;
    a.dl_device_type = type;
  }
  return a;
}

bool is_device(const Arg& a) { return a.kind == ArgKind::Cai || a.kind == ArgKind::DlpackCuda; }

#ifdef KESTREL_HAS_CUDA
void cuda_check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw kestrel::Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(e));
}

// The pointer must be device (or managed) memory of the engine's GPU.
void check_pointer(uintptr_t p, const std::string& what, int device) {
  cudaPointerAttributes a{};
  const cudaError_t e = cudaPointerGetAttributes(&a, reinterpret_cast<const void*>(p));
  if (e != cudaSuccess) {
    cudaGetLastError();  // not sticky: clear it so later calls do not see it
    throw kestrel::UsageError(what + ": its pointer " + hex(p) + " is not CUDA memory (" + cudaGetErrorString(e) + ")");
  }
  if (a.type != cudaMemoryTypeDevice && a.type != cudaMemoryTypeManaged)
    throw kestrel::UsageError(what + ": its pointer " + hex(p) + " is " +
                              (a.type == cudaMemoryTypeHost ? "pinned host memory" : "not CUDA device memory") +
                              "; the engine takes CUDA device memory");
  if (a.device != device)
    throw kestrel::UsageError(what + " is on CUDA device " + std::to_string(a.device) + "; the engine runs on device " +
                              std::to_string(device));
}

cudaStream_t as_stream(uintptr_t s) { return reinterpret_cast<cudaStream_t>(s); }

// Execution contexts of one engine, shared by the threads that call it: a call takes a free context
// (a new one when all are busy, so concurrent calls never wait for each other) and gives it back.
// A context's activations live in its arena, so two calls on one context must not overlap on the GPU
// even when they come on different streams: each context records an event after its work, and the
// next call's stream waits for it.
//
// CUDA graphs: a context replays one graph, captured for one set of I/O pointers (capturing costs far
// more than an eager run). A call picks the free context whose graph fits its pointers; pointers seen
// in one of the last kRecent calls are captured on a context without a graph, or on a new one while
// there are fewer than kGraphContexts, or over a graph whose pointers have not come back lately;
// pointers seen once run eagerly. A loop that allocates its output each call cycles through two
// buffers (the caching allocator's), so both get a graph.
class ContextPool {
 public:
  using Key = std::pair<uintptr_t, uintptr_t>;  // (input, output) device pointers
  static constexpr Key kHostKey{0, 0};         // the context's own buffers (the numpy path)
  static constexpr size_t kGraphContexts = 4, kRecent = 8;

  struct Slot {
    std::unique_ptr<kestrel::ExecutionContext> ctx;
    cudaEvent_t done = nullptr, ready = nullptr;
    bool used = false, busy = false;
    std::optional<Key> captured;  // the pointers of its CUDA graph
    ~Slot() {
      if (done) {
        if (used) cudaEventSynchronize(done);  // the arena is freed with the context
        cudaEventDestroy(done);
      }
      if (ready) cudaEventDestroy(ready);
    }
  };

  // A taken context; gives it back when it goes out of scope.
  class Lease {
   public:
    Lease(ContextPool& pool, Slot* slot, const Key& key, bool graphs) : pool_(pool), slot_(slot), key_(key), graphs_(graphs) {}
    Lease(const Lease&) = delete;
    ~Lease() { pool_.give_back(slot_, key_, graphs_ && ok_); }
    Slot& slot() { return *slot_; }
    bool graphs() const { return graphs_; }
    // Orders this call's work on `s` after the context's previous work and after the work queued
    // now on each stream of `ready_on` (where the buffers' producers work).
    void before(cudaStream_t s, const std::vector<cudaStream_t>& ready_on = {}) {
      slot_->ctx->set_cuda_graphs(graphs_);
      // Also on the same stream (free there): a destroyed stream's handle can come back as another's.
      if (slot_->used) cuda_check(cudaStreamWaitEvent(s, slot_->done, 0), "cudaStreamWaitEvent");
      for (cudaStream_t r : ready_on) {  // the wait takes the event's state now: one event serves all
        cuda_check(cudaEventRecord(slot_->ready, r), "cudaEventRecord");
        cuda_check(cudaStreamWaitEvent(s, slot_->ready, 0), "cudaStreamWaitEvent");
      }
    }
    void after(cudaStream_t s) {
      cuda_check(cudaEventRecord(slot_->done, s), "cudaEventRecord");
      slot_->used = true;
      ok_ = true;
    }

   private:
    ContextPool& pool_;
    Slot* slot_;
    Key key_;
    bool graphs_, ok_ = false;
  };

  explicit ContextPool(const kestrel::Engine& engine) : engine_(engine) {}

  // Call without the GIL: may create a context. `want_graph`: capture these pointers now (a caller
  // that will replay them many times).
  std::unique_ptr<Lease> take(const Key& key, bool want_graph = false) {
    std::unique_lock<std::mutex> lock(m_);
    const bool recurring =
        want_graph || key == kHostKey || std::find(recent_.begin(), recent_.end(), key) != recent_.end();
    recent_.erase(std::remove(recent_.begin(), recent_.end(), key), recent_.end());
    recent_.push_front(key);
    if (recent_.size() > kRecent) recent_.pop_back();
    Slot *empty = nullptr, *stale = nullptr, *any = nullptr;
    for (auto& s : slots_) {
      if (s->busy) continue;
      if (s->captured == key) return lend(s.get(), key, true);
      if (!s->captured && !empty) empty = s.get();
      if (s->captured && !stale && std::find(recent_.begin(), recent_.end(), *s->captured) == recent_.end())
        stale = s.get();
      if (!any) any = s.get();
    }
    if (recurring) {
      if (empty) return lend(empty, key, true);
      if (slots_.size() < kGraphContexts) return lend(create(lock), key, true);
      if (stale) return lend(stale, key, true);
    }
    return lend(any ? any : create(lock), key, false);
  }

  size_t size() {
    std::lock_guard<std::mutex> lock(m_);
    return slots_.size();
  }

 private:
  std::unique_ptr<Lease> lend(Slot* s, const Key& key, bool graphs) {
    s->busy = true;
    return std::make_unique<Lease>(*this, s, key, graphs);
  }
  // Creates a context with the lock released (it allocates the arena) and adds it, taken.
  Slot* create(std::unique_lock<std::mutex>& lock) {
    lock.unlock();
    auto s = std::make_unique<Slot>();
    {
      std::lock_guard<std::mutex> one_at_a_time(create_m_);  // rare; the runtime's set-up need not be reentrant
      s->ctx = engine_.create_execution_context();  // makes the engine's device current
      cuda_check(cudaEventCreateWithFlags(&s->done, cudaEventDisableTiming), "cudaEventCreate");
      cuda_check(cudaEventCreateWithFlags(&s->ready, cudaEventDisableTiming), "cudaEventCreate");
    }
    lock.lock();
    slots_.push_back(std::move(s));
    return slots_.back().get();
  }
  void give_back(Slot* s, const Key& key, bool captured) {
    std::lock_guard<std::mutex> lock(m_);
    if (captured) s->captured = key;
    else if (s->captured == key) s->captured.reset();  // a failed capture leaves no graph behind
    s->busy = false;
  }

  const kestrel::Engine& engine_;
  std::mutex m_, create_m_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::deque<Key> recent_;
};
#endif

class PyEngine {
 public:
  PyEngine(const py::object& model_path, const std::string& backend, bool fp16, bool int8, int64_t batch, int64_t imgsz,
      const py::object& timing_cache, const py::object& calib, const py::object& calib_cache, bool verbose) {
    const std::string model = fspath(model_path);
    const auto o = model_options(backend, fp16, int8, batch, imgsz, timing_cache, calib, calib_cache, verbose);
    py::gil_scoped_release release;
#ifdef KESTREL_HAS_CUDA
    // As open_model decides; a CUDA engine is held as the runtime's Engine, whose contexts take
    // device pointers. An explicit cpu choice never initialises CUDA.
    const bool engine_file = kestrel::is_engine_file(model);
    static const kestrel::BackendAvailability cpu_only{};
    const kestrel::BackendAvailability& available =
        o.backend == kestrel::Backend::Cpu && !engine_file ? cpu_only : kestrel::backend_availability();
    if (kestrel::choose_backend(model, engine_file, o.backend, o.precision, available) == kestrel::Backend::Cuda) {
      cuda_ = kestrel::open_cuda_engine(model, o);
      const kestrel::EngineInfo& info = cuda_->info();
      if (info.inputs.size() != 1 || info.outputs.size() != 1)
        throw kestrel::UsageError("kestrel.Engine runs engines of one input and one output; " + model + " has " +
                                  std::to_string(info.inputs.size()) + " and " + std::to_string(info.outputs.size()));
      // An engine with a batch profile takes any batch in it; the others exactly their own.
      if (info.min_batch < info.max_batch) range_ = {info.min_batch, info.max_batch};
      pool_ = std::make_unique<ContextPool>(*cuda_);
      pool_->take(ContextPool::kHostKey);  // the first context now: a GPU that cannot run it fails here
      cuda_check(cudaGetDevice(&device_), "cudaGetDevice");
      return;
    }
#endif
    engine_ = kestrel::open_model(model, o);
  }

  std::pair<int64_t, int64_t> batch_range() const {
    if (range_.max > 0) return {range_.min, range_.max};
    const kestrel::Shape s = input_shape();
    const int64_t b = s.empty() ? 1 : s[0];
    return {b, b};
  }
  bool cuda() const {
#ifdef KESTREL_HAS_CUDA
    return cuda_ != nullptr;
#else
    return false;
#endif
  }
  kestrel::Shape input_shape() const {
#ifdef KESTREL_HAS_CUDA
    if (cuda_) return cuda_->info().inputs.at(0).shape;
#endif
    return engine_->input_shape();
  }
  kestrel::Shape output_shape() const {
#ifdef KESTREL_HAS_CUDA
    if (cuda_) return cuda_->info().outputs.at(0).shape;
#endif
    return engine_->output_shape();
  }
  std::string description() const {
#ifdef KESTREL_HAS_CUDA
    if (cuda_) {
      const kestrel::EngineInfo& i = cuda_->info();
      return std::string("cuda ") + kestrel::precision_name(i.precision) + " (" + i.gpu_name + ")";
    }
#endif
    return engine_->description();
  }
  std::map<std::string, std::string> metadata() const {
#ifdef KESTREL_HAS_CUDA
    if (cuda_) return cuda_->info().metadata;
#endif
    return engine_->metadata();
  }

  // y = engine(x, out=None, stream=None): numpy in, numpy out (run synchronously); a CUDA tensor in, a
  // CUDA tensor out, enqueued on the caller's stream (see run_device).
  py::object call(const py::object& x, const py::object& out, const py::object& stream) {
    const Arg a = classify(x, "the input");
    if (is_device(a)) return run_device(x, a, out, stream);
    if (a.kind == ArgKind::Other && a.dl_device_type != 0 && cuda())
      throw kestrel::UsageError("the input is a " + dl::device_name(a.dl_device_type) +
                                " tensor (DLPack); this CUDA engine takes CUDA tensors or numpy arrays (x.numpy())");
    if (!stream.is_none())
      throw kestrel::UsageError("stream= is for CUDA tensor inputs; numpy inputs run synchronously");
    return run_host(x, out);
  }

  // The C++ side of bench/python_overhead.py: `n` calls of ExecutionContext::enqueue on the buffers of
  // x and out (on the stream eng(x, out=out) would use), each followed by a synchronization of that
  // stream, timed with it when `sync` (else the enqueue alone); returns each call's seconds. The
  // pointers' CUDA graph is captured first.
  py::list time_enqueue(const py::object& x, const py::object& out, int n, bool sync) {
#ifdef KESTREL_HAS_CUDA
    if (!cuda_) throw kestrel::UsageError("time_enqueue needs a CUDA engine");
    if (out.is_none()) throw kestrel::UsageError("time_enqueue needs out=");
    if (n < 1) throw kestrel::UsageError("n must be at least 1");
    const Arg a = classify(x, "the input");
    if (!is_device(a)) throw kestrel::UsageError("time_enqueue takes CUDA tensors");
    Prepared p = prepare(x, a, out, py::none());
    std::vector<double> t(static_cast<size_t>(n));
    {
      py::gil_scoped_release release;
      auto lease = pool_->take({p.in.ptr, p.out.ptr}, true);
      kestrel::ExecutionContext& ctx = *lease->slot().ctx;
      if (range_.max > 0) ctx.set_batch(p.in.batch);
      const cudaStream_t s = as_stream(p.stream);
      lease->before(s, p.ready_on);
      const std::vector<const void*> in{reinterpret_cast<const void*>(p.in.ptr)};
      const std::vector<void*> o{reinterpret_cast<void*>(p.out.ptr)};
      ctx.enqueue(in, o, s);  // captures the graph (when not yet) outside the timed calls
      cuda_check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
      for (auto& v : t) {
        const auto t0 = std::chrono::steady_clock::now();
        ctx.enqueue(in, o, s);
        if (sync) cuda_check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
        v = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (!sync) cuda_check(cudaStreamSynchronize(s), "cudaStreamSynchronize");  // untimed: no queue builds up
      }
      cuda_check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
      lease->after(s);
    }
    py::list r;
    for (double v : t) r.append(v);
    return r;
#else
    (void)x, (void)out, (void)n, (void)sync;
    throw kestrel::UsageError("time_enqueue needs a CUDA engine (this build has no CUDA backend)");
#endif
  }

  // Contexts created so far (the pool grows with concurrent callers and CUDA graphs).
  size_t contexts() {
#ifdef KESTREL_HAS_CUDA
    if (pool_) return pool_->size();
#endif
    return 1;
  }

 private:
  // numpy (or anything numpy converts) in, numpy out.
  py::object run_host(const py::object& x, const py::object& out) {
    kestrel::Shape want = input_shape(), want_out = output_shape();
    auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x);
    if (!a) {
      PyErr_Clear();
      throw kestrel::UsageError("the input must be a numeric array or a CUDA tensor, not " +
                                std::string(py::str(py::type::of(x).attr("__name__"))));
    }
    kestrel::Shape got(a.shape(), a.shape() + a.ndim());
    check_shape(got, want, "the input", range_);
    want = got;
    if (range_.max > 0) want_out[0] = got[0];  // a profile engine's output follows the input's batch
    py::array y;
    if (!out.is_none()) {
      if (!py::isinstance<py::array>(out))
        throw kestrel::UsageError("out must be a numpy array when the input is one (CUDA arrays go with CUDA inputs), not " +
                                  std::string(py::str(py::type::of(out).attr("__name__"))));
      y = py::reinterpret_borrow<py::array>(out);
      if (!y.dtype().is(py::dtype::of<float>()))
        throw kestrel::UsageError("out is " + std::string(py::str(y.dtype())) + "; the engine writes float32");
      check_shape(kestrel::Shape(y.shape(), y.shape() + y.ndim()), want_out, "out");  // the input's batch
      if (!(y.flags() & py::array::c_style)) throw kestrel::UsageError("out is not C-contiguous");
      if (!y.writeable()) throw kestrel::UsageError("out is read-only");
    }
    kestrel::HostTensor in(kestrel::DType::F32, want);
    std::memcpy(in.raw(), a.data(), in.nbytes());
    kestrel::HostTensor r;
    {
      py::gil_scoped_release release;
#ifdef KESTREL_HAS_CUDA
      if (cuda_) {
        auto lease = pool_->take(ContextPool::kHostKey);
        const cudaStream_t s = lease->slot().ctx->stream();
        lease->before(s);
        r = lease->slot().ctx->run({in}).at(0);
        lease->after(s);
      } else
#endif
      {
        std::lock_guard<std::mutex> lock(mutex_);  // the CPU engine has one set of buffers
        r = engine_->infer(in);
      }
    }
    if (out.is_none()) y = py::array_t<float>(std::vector<py::ssize_t>(r.shape().begin(), r.shape().end()));
    std::memcpy(y.mutable_data(), r.raw(), r.nbytes());
    return y;  // out itself when given
  }

#ifdef KESTREL_HAS_CUDA
  struct Prepared {
    DeviceBuffer in, out;
    py::object result;                     // what the call returns: out, or the output it allocated
    uintptr_t stream = 1;                  // where the work goes (protocol numbering)
    std::vector<cudaStream_t> ready_on;    // other streams the buffers' producers named: waited for
  };

  // torch.Tensor, once torch is imported (it is never imported here).
  bool is_torch(const py::object& x) {
    if (!torch_tensor_) {
      PyObject* torch = PyDict_GetItemString(PyImport_GetModuleDict(), "torch");
      if (!torch) return false;
      torch_ = py::reinterpret_borrow<py::object>(torch);
      torch_tensor_ = torch_.attr("Tensor");
    }
    return PyObject_IsInstance(x.ptr(), torch_tensor_.ptr()) == 1;
  }
  static bool is_cupy(const py::object& x) {
    const std::string mod = py::str(py::type::of(x).attr("__module__"));
    return mod.rfind("cupy", 0) == 0;
  }

  // torch's current stream on the engine's device: what torch's own operations on x would use.
  uintptr_t torch_stream() {
    if (!torch_stream_fn_) {
      const py::object c = torch_.attr("_C");
      raw_stream_ = py::hasattr(c, "_cuda_getCurrentRawStream");  // an int, without a Stream object
      torch_stream_fn_ = raw_stream_ ? c.attr("_cuda_getCurrentRawStream") : torch_.attr("cuda").attr("current_stream");
    }
    const py::object r = torch_stream_fn_(device_);
    const auto s = (raw_stream_ ? r : r.attr("cuda_stream")).cast<uintptr_t>();
    return s ? s : 1;  // torch numbers the legacy default stream 0
  }

  // stream=: an int (a cudaStream_t; 0 is the legacy default stream, as torch and cupy number it), a
  // torch.cuda.Stream or a cupy Stream. An int is taken as the stream it names, as torch's
  // ExternalStream takes it: the CUDA runtime has no way to check a handle.
  static uintptr_t stream_arg(const py::object& stream) {
    py::object v = stream;
    if (!py::isinstance<py::int_>(v)) {
      if (py::hasattr(stream, "cuda_stream")) v = stream.attr("cuda_stream");
      else if (py::hasattr(stream, "ptr")) v = stream.attr("ptr");
    }
    if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v))
      throw kestrel::UsageError("stream must be an int (a cudaStream_t), a torch.cuda.Stream or a cupy Stream, not " +
                                std::string(py::str(py::type::of(stream).attr("__name__"))));
    const auto s = v.cast<uintptr_t>();
    return s ? s : 1;
  }

  [[noreturn]] static void not_device_out(const py::object& out) {
    throw kestrel::UsageError("out must be a CUDA array when the input is one, not " +
                              std::string(py::str(py::type::of(out).attr("__name__"))));
  }
#endif

  // Everything a device call checks, under the GIL: both buffers described right, on the engine's GPU,
  // the stream decided, the output allocated when not given.
#ifdef KESTREL_HAS_CUDA
  Prepared prepare(const py::object& x, const Arg& a, const py::object& out, const py::object& stream) {
    Prepared p;
    const kestrel::Shape want = input_shape();
    const bool torch = is_torch(x);
    // The description first: it needs no memory access.
    if (a.kind == ArgKind::Cai) p.in = parse_cai(a.cai, "the input", want, false, range_);
    Arg oa;
    if (!out.is_none()) {
      oa = classify(out, "out");
      if (oa.kind == ArgKind::Cai) p.out = parse_cai(oa.cai, "out", output_shape(), true, range_);
      else if (oa.kind != ArgKind::DlpackCuda) not_device_out(out);
    }
    // The stream: stream=, else the one the input's interface names, else torch's current stream for
    // a torch tensor, else the legacy default stream (it waits for all work on blocking streams).
    if (!stream.is_none()) p.stream = stream_arg(stream);
    else if (p.in.has_stream) p.stream = p.in.stream;
    else if (torch) p.stream = torch_stream();
    // The engine's work waits for the streams the buffers were produced on when they are others:
    // those their interfaces name, or torch's current stream for a torch tensor sent to another one.
    if (p.in.has_stream && p.in.stream != p.stream) p.ready_on.push_back(as_stream(p.in.stream));
    if (p.out.has_stream && p.out.stream != p.stream && p.out.stream != p.in.stream)
      p.ready_on.push_back(as_stream(p.out.stream));
    if (!stream.is_none() && torch && !p.in.has_stream) {
      const uintptr_t current = torch_stream();
      if (current != p.stream) p.ready_on.push_back(as_stream(current));
    }
    if (a.kind == ArgKind::DlpackCuda) p.in = parse_dlpack(x, "the input", want, p.stream, device_, range_);
    if (!out.is_none() && oa.kind == ArgKind::DlpackCuda)
      p.out = parse_dlpack(out, "out", output_shape(), p.stream, device_, range_);
    check_pointer(p.in.ptr, "the input", device_);
    if (!out.is_none()) {
      if (range_.max > 0 && p.out.batch != p.in.batch)
        throw kestrel::UsageError("out has batch " + std::to_string(p.out.batch) + " but the input has " +
                                  std::to_string(p.in.batch) + ": the output follows the input's batch");
      check_pointer(p.out.ptr, "out", device_);
      p.result = out;
      return p;
    }
    // No out=: an output of the input's own library, allocated on the stream the work goes to.
    kestrel::Shape os = output_shape();
    if (range_.max > 0) os[0] = p.in.batch;
    const py::tuple shape = py::cast(std::vector<int64_t>(os.begin(), os.end()));
    if (torch) {
      if (!torch_empty_) {
        torch_empty_ = torch_.attr("empty");
        torch_float32_ = torch_.attr("float32");
      }
      p.result = torch_empty_(shape, py::arg("dtype") = torch_float32_, py::arg("device") = x.attr("device"));
      p.out.ptr = p.result.attr("data_ptr")().cast<uintptr_t>();
    } else if (is_cupy(x)) {
      const py::object cupy = py::module_::import("cupy");
      {
        // cupy allocates on its current device: the engine's.
        py::object dev = cupy.attr("cuda").attr("Device")(device_);
        dev.attr("__enter__")();
        try {
          p.result = cupy.attr("empty")(shape, py::arg("dtype") = cupy.attr("float32"));
        } catch (...) {
          dev.attr("__exit__")(py::none(), py::none(), py::none());
          throw;
        }
        dev.attr("__exit__")(py::none(), py::none(), py::none());
      }
      p.out = parse_cai(p.result.attr("__cuda_array_interface__"), "out", os, true);
      p.out.has_stream = false;
    } else {
      throw kestrel::UsageError(std::string("pass out= (a float32 CUDA array of shape ") + kestrel::shape_str(os) +
                                "): outputs are allocated for torch and cupy inputs only, not " +
                                std::string(py::str(py::type::of(x).attr("__name__"))));
    }
    check_pointer(p.out.ptr, "out", device_);
    return p;
  }
#endif

  py::object run_device(const py::object& x, const Arg& a, const py::object& out, const py::object& stream) {
#ifdef KESTREL_HAS_CUDA
    if (cuda_) {
      Prepared p = prepare(x, a, out, stream);
      {
        py::gil_scoped_release release;
        auto lease = pool_->take({p.in.ptr, p.out.ptr});
        const cudaStream_t s = as_stream(p.stream);
        lease->before(s, p.ready_on);
        if (range_.max > 0) lease->slot().ctx->set_batch(p.in.batch);
        lease->slot().ctx->enqueue({reinterpret_cast<const void*>(p.in.ptr)}, {reinterpret_cast<void*>(p.out.ptr)}, s);
        lease->after(s);
      }
      return p.result;
    }
#endif
    // A CPU engine: the descriptions are still checked, so a wrong tensor gets its own message.
    (void)x, (void)stream;
    if (a.kind == ArgKind::Cai) parse_cai(a.cai, "the input", input_shape(), false);
    if (!out.is_none()) {
      const Arg oa = classify(out, "out");
      if (oa.kind == ArgKind::Cai) parse_cai(oa.cai, "out", output_shape(), true);
    }
    throw kestrel::UsageError("this engine runs on the CPU backend (" + description() +
                              "): it takes numpy arrays; CUDA tensors need a CUDA engine (backend='cuda')");
  }

  std::unique_ptr<kestrel::InferenceEngine> engine_;  // the CPU backend
  std::mutex mutex_;
  BatchRange range_;  // a CUDA engine with a batch profile: the batches it takes
#ifdef KESTREL_HAS_CUDA
  std::unique_ptr<kestrel::Engine> cuda_;  // the CUDA backend; outlives its contexts
  std::unique_ptr<ContextPool> pool_;
  int device_ = 0;
  py::object torch_, torch_tensor_, torch_stream_fn_, torch_empty_, torch_float32_;
  bool raw_stream_ = false;
#endif
};

py::dict val(const py::object& model_path, const py::object& data_path, const std::string& backend, bool fp16, bool int8,
             int64_t batch, int64_t imgsz, float conf, double iou, int max_det, const py::object& timing_cache,
             const py::object& calib, const py::object& calib_cache, bool verbose) {
  const std::string model = fspath(model_path), data = fspath(data_path);
  const auto o = model_options(backend, fp16, int8, batch, imgsz, timing_cache, calib, calib_cache, verbose);
  if (!(conf >= 0.f && conf <= 1.f)) throw kestrel::UsageError("conf must be in [0, 1], not " + std::to_string(conf));
  if (!(iou < 0 || iou <= 1.0)) throw kestrel::UsageError("iou must be in [0, 1], not " + std::to_string(iou));
  if (max_det < 1) throw kestrel::UsageError("max_det must be at least 1");
  kestrel::pipeline::ValResult r;
  std::vector<std::string> warnings;
  {
    py::gil_scoped_release release;
    kestrel::eval::LoadOptions lo;
    lo.size_probe = [](const std::string& p) {
      const kestrel::image::ImageSize s = kestrel::image::probe_size(p);
      return std::pair<int, int>{s.width, s.height};
    };
    const kestrel::eval::Dataset ds = kestrel::eval::load_dataset(data, lo);
    warnings = ds.warnings;
    auto engine = kestrel::open_model(model, o);
    kestrel::pipeline::ValOptions vo;
    vo.conf = conf;
    vo.iou = iou;
    vo.max_det = max_det;
    vo.progress = verbose;
    r = kestrel::pipeline::validate(*engine, ds, vo);
  }
  for (auto& w : warnings) PyErr_WarnEx(PyExc_UserWarning, w.c_str(), 1);
  if (r.images == 0) throw kestrel::Error("val: no image of " + data + " could be evaluated");
  py::dict d;
  for (size_t i = 0; i < 12; ++i) d[kestrel::eval::CocoStats::names()[i]] = r.stats.stats[i];
  return d;
}

// kestrel.build(model, output, ...): a CUDA engine file for this GPU (CUDA builds with a GPU).
void build(const py::object& model_path, const py::object& output_path, bool fp16, bool int8, int64_t batch,
           int64_t imgsz, const py::object& timing_cache, const py::object& calib, const py::object& calib_cache,
           bool verbose, int64_t min_batch, int64_t opt_batch, int64_t max_batch) {
  const std::string model = fspath(model_path), output = fspath(output_path);
  kestrel::ModelOptions o = model_options("cuda", fp16, int8, batch, imgsz, timing_cache, calib, calib_cache, verbose);
  // A batch profile, as `kestrel build --min-batch/--opt-batch/--max-batch`.
  kestrel::check_batch_profile(batch, min_batch, opt_batch, max_batch);
  o.min_batch = min_batch, o.opt_batch = opt_batch, o.max_batch = max_batch;
  if (kestrel::is_engine_file(model))
    throw kestrel::UsageError(model + " is an engine file already: build takes the ONNX model (or a built-in name)");
  kestrel::choose_backend(model, false, kestrel::Backend::Cuda, o.precision, kestrel::backend_availability());
#ifdef KESTREL_HAS_CUDA
  std::error_code ec;
  if (std::filesystem::equivalent(model, output, ec))
    throw kestrel::UsageError("the output " + output + " is the model itself: choose another engine path");
  py::gil_scoped_release release;
  kestrel::open_cuda_engine(model, o)->save(output);
#endif
}

}  // namespace

PYBIND11_MODULE(_kestrel, m) {
  m.doc() = "Kestrel: YOLO engines (C++ core)";
  m.attr("__version__") = KESTREL_VERSION_STRING;
  static py::exception<kestrel::Error> error(m, "Error", PyExc_RuntimeError);
  static py::exception<kestrel::UsageError> usage_error(m, "UsageError", error.ptr());
  // Most specific first: a UsageError is a kestrel::Error too.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const kestrel::UsageError& e) {
      usage_error(e.what());
    } catch (const kestrel::Error& e) {
      error(e.what());
    }
  });

  m.def("backend_available", [](const std::string& backend) {
    const auto& a = kestrel::backend_availability();
    const auto b = kestrel::parse_backend(backend);
    return b == kestrel::Backend::Cpu || b == kestrel::Backend::Auto || a.gpu;
  });
  m.def("gpu_available", [] { return kestrel::backend_availability().gpu; });

#define KESTREL_MODEL_ARGS                                                                                    \
  py::arg("model"), py::kw_only(), py::arg("backend") = "auto", py::arg("fp16") = false, py::arg("int8") = false, \
      py::arg("batch") = 0, py::arg("imgsz") = 0, py::arg("timing_cache") = py::str(""),       \
      py::arg("calib") = py::str(""), py::arg("calib_cache") = py::str(""), py::arg("verbose") = false

  py::class_<PyDetector>(m, "_Detector")
      .def(py::init<const py::object&, const std::string&, bool, bool, int64_t, int64_t, const py::object&,
                    const py::object&, const py::object&, bool>(),
           KESTREL_MODEL_ARGS)
      .def("detect", &PyDetector::detect, py::arg("items"), py::arg("conf"), py::arg("iou"), py::arg("max_det"),
           py::arg("agnostic"), py::arg("channels"))
      .def_property_readonly("names", &PyDetector::names)
      .def_property_readonly("batch", [](const PyDetector& d) { return d.get().batch(); })
      .def_property_readonly("imgsz", [](const PyDetector& d) { return d.get().imgsz(); })
      .def_property_readonly("description", [](const PyDetector& d) { return d.get().description(); });

  py::class_<PyEngine>(m, "Engine",
                       "Raw tensors through a model or engine file: y = Engine(path)(x). x: a numpy array, or on a "
                       "CUDA engine a CUDA tensor (__cuda_array_interface__ or __dlpack__), run in place on the "
                       "caller's stream")
      .def(py::init<const py::object&, const std::string&, bool, bool, int64_t, int64_t, const py::object&,
                    const py::object&, const py::object&, bool>(),
           KESTREL_MODEL_ARGS)
      .def("__call__", &PyEngine::call, py::arg("x"), py::kw_only(), py::arg("out") = py::none(),
           py::arg("stream") = py::none())
      .def("_time_enqueue", &PyEngine::time_enqueue, py::arg("x"), py::arg("out"), py::arg("n"), py::arg("sync") = true,
           "bench/python_overhead.py: seconds of each of n C++ enqueue (+ stream sync when sync) calls on these buffers")
      .def_property_readonly("_contexts", &PyEngine::contexts)
      .def_property_readonly("backend", [](const PyEngine& e) { return e.cuda() ? "cuda" : "cpu"; })
      .def_property_readonly("input_shape", &PyEngine::input_shape)
      .def_property_readonly("batch_range", &PyEngine::batch_range,
                             "(min, max) batches the engine takes: a batch profile's range, else its one batch")
      .def_property_readonly("output_shape", &PyEngine::output_shape)
      .def_property_readonly("description", &PyEngine::description)
      .def_property_readonly("metadata", &PyEngine::metadata);

  m.def("val", &val, py::arg("model"), py::kw_only(), py::arg("data"), py::arg("backend") = "auto",
        py::arg("fp16") = false, py::arg("int8") = false, py::arg("batch") = 0, py::arg("imgsz") = 0,
        py::arg("conf") = 0.001f, py::arg("iou") = -1.0, py::arg("max_det") = 300, py::arg("timing_cache") = py::str(""),
        py::arg("calib") = py::str(""), py::arg("calib_cache") = py::str(""), py::arg("verbose") = false,
        "COCO metrics (pycocotools-exact) of a model on a labelled dataset: a dict of the 12 stats");
  m.def("build", &build, py::arg("model"), py::arg("output"), py::kw_only(), py::arg("fp16") = false,
        py::arg("int8") = false, py::arg("batch") = 0, py::arg("imgsz") = 0, py::arg("timing_cache") = py::str(""),
        py::arg("calib") = py::str(""), py::arg("calib_cache") = py::str(""), py::arg("verbose") = false,
        py::arg("min_batch") = 0, py::arg("opt_batch") = 0, py::arg("max_batch") = 0,
        "Builds a CUDA engine file for this GPU from an ONNX model or built-in name; max_batch (with min_batch, "
        "opt_batch) builds one engine for every batch in the range");
#undef KESTREL_MODEL_ARGS
}
