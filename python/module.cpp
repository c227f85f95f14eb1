// The `kestrel._kestrel` extension: Detector, Engine and val over the C++ library. The Python layer
// (kestrel/__init__.py) shapes the results as Ultralytics' (r.boxes.xyxy, r.names, r.speed).
// The GIL is released while images are decoded and engines run; kestrel errors become kestrel.Error
// (kestrel.UsageError for wrong arguments) with the CLI's one-line message.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <mutex>

#include "kestrel/detector.h"
#include "kestrel/eval.h"
#include "kestrel/image.h"
#include "kestrel/model.h"
#include "kestrel/pipeline.h"
#include "kestrel/version.h"
#ifdef KESTREL_HAS_CUDA
#include <filesystem>

#include "kestrel/cuda_model.h"
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

class PyEngine {
 public:
  PyEngine(const py::object& model_path, const std::string& backend, bool fp16, bool int8, int64_t batch, int64_t imgsz,
      const py::object& timing_cache, const py::object& calib, const py::object& calib_cache, bool verbose) {
    const std::string model = fspath(model_path);
    const auto o = model_options(backend, fp16, int8, batch, imgsz, timing_cache, calib, calib_cache, verbose);
    py::gil_scoped_release release;
    engine_ = kestrel::open_model(model, o);
  }

  // x: any numeric array of the input's shape, run as float32; returns the float32 output.
  py::array_t<float> run(const py::array& x) {
    const kestrel::Shape want = engine_->input_shape();
    auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x);
    if (!a) throw kestrel::UsageError("the input must be a numeric array");
    kestrel::Shape got(a.shape(), a.shape() + a.ndim());
    if (got != want)
      throw kestrel::UsageError("the input is " + kestrel::shape_str(got) + "; the engine takes " + kestrel::shape_str(want) +
                                " float32");
    kestrel::HostTensor in(kestrel::DType::F32, want);
    std::memcpy(in.raw(), a.data(), in.nbytes());
    kestrel::HostTensor out;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex_);  // one execution context
      out = engine_->infer(in);
    }
    py::array_t<float> y(std::vector<py::ssize_t>(out.shape().begin(), out.shape().end()));
    std::memcpy(y.mutable_data(), out.raw(), out.nbytes());
    return y;
  }
  const kestrel::InferenceEngine& get() const { return *engine_; }

 private:
  std::unique_ptr<kestrel::InferenceEngine> engine_;
  std::mutex mutex_;
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
           bool verbose) {
  const std::string model = fspath(model_path), output = fspath(output_path);
  kestrel::ModelOptions o = model_options("cuda", fp16, int8, batch, imgsz, timing_cache, calib, calib_cache, verbose);
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

  py::class_<PyEngine>(m, "Engine", "Raw tensors through a model or engine file: y = Engine(path)(x)")
      .def(py::init<const py::object&, const std::string&, bool, bool, int64_t, int64_t, const py::object&,
                    const py::object&, const py::object&, bool>(),
           KESTREL_MODEL_ARGS)
      .def("__call__", &PyEngine::run, py::arg("x"))
      .def_property_readonly("input_shape", [](const PyEngine& e) { return e.get().input_shape(); })
      .def_property_readonly("output_shape", [](const PyEngine& e) { return e.get().output_shape(); })
      .def_property_readonly("description", [](const PyEngine& e) { return e.get().description(); })
      .def_property_readonly("metadata", [](const PyEngine& e) { return e.get().metadata(); });

  m.def("val", &val, py::arg("model"), py::kw_only(), py::arg("data"), py::arg("backend") = "auto",
        py::arg("fp16") = false, py::arg("int8") = false, py::arg("batch") = 0, py::arg("imgsz") = 0,
        py::arg("conf") = 0.001f, py::arg("iou") = -1.0, py::arg("max_det") = 300, py::arg("timing_cache") = py::str(""),
        py::arg("calib") = py::str(""), py::arg("calib_cache") = py::str(""), py::arg("verbose") = false,
        "COCO metrics (pycocotools-exact) of a model on a labelled dataset: a dict of the 12 stats");
  m.def("build", &build, py::arg("model"), py::arg("output"), py::kw_only(), py::arg("fp16") = false,
        py::arg("int8") = false, py::arg("batch") = 0, py::arg("imgsz") = 0, py::arg("timing_cache") = py::str(""),
        py::arg("calib") = py::str(""), py::arg("calib_cache") = py::str(""), py::arg("verbose") = false,
        "Builds a CUDA engine file for this GPU from an ONNX model or built-in name");
#undef KESTREL_MODEL_ARGS
}
