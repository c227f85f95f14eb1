#pragma once
// The network-definition API: build a Kestrel graph layer by layer from C++, in the mould of TensorRT's
// INetworkDefinition. It is how the built-in model zoo (kestrel/zoo.h) is written, and how a user can
// describe a model that has no ONNX export.
//
//   kestrel::NetworkDefinition net("tiny");
//   kestrel::ITensor* x = net.addInput("images", kestrel::DType::F32, {1, 3, 64, 64});
//   auto* conv = net.addConvolution(*x, 16, {3, 3}, weights, bias);
//   conv->setStride({2, 2});
//   conv->setPadding({1, 1});
//   conv->setName("stem");
//   auto* act = net.addActivation(*conv->getOutput(0), kestrel::ActivationType::kSILU);
//   net.markOutput(*act->getOutput(0));
//   kestrel::Graph g = net.takeGraph();  // shapes inferred, ready for CpuExecutor or the engine builder
//
// Layers lower to ordinary Graph nodes with ONNX op names and attributes, in the same canonical form the
// ONNX importer produces (Reshape target in attr "shape", Split sizes in "split", Slice parameters and
// Resize sizes/scales as attributes), so every backend and pass treats both sources alike. SiLU is
// lowered to Sigmoid*Mul, exactly as Ultralytics exports it, so that engine fusions that look for that
// pattern fire on zoo models too.
//
// Shapes are inferred as layers are added: a layer whose inputs do not fit (wrong channel count, bad
// axis, ...) throws kestrel::Error naming the layer, and is not added. Setters (stride, padding, axis,
// ...) are validated lazily, at the next shape query, addX, or graph(); that error names the layer too.
// Tensor and layer handles stay valid for the life of the NetworkDefinition (which is not copyable).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kestrel/graph.h"
#include "kestrel/tensor.h"

namespace kestrel {

using Dims = Shape;

class NetworkDefinition;
class ILayer;
namespace detail {
class Lowering;
struct NetworkImpl;
}  // namespace detail

enum class LayerType {
  kCONVOLUTION,
  kACTIVATION,
  kELEMENTWISE,
  kCONCATENATION,
  kSPLIT,
  kSLICE,
  kPOOLING,
  kRESIZE,
  kSOFTMAX,
  kMATRIX_MULTIPLY,
  kSHUFFLE,
  kCONSTANT,
  kUNARY,
  kREDUCE,
};
const char* layer_type_name(LayerType t);

enum class ActivationType {
  kRELU,
  kSIGMOID,
  kSILU,          // x * sigmoid(x), lowered to Sigmoid + Mul (the Ultralytics export pattern)
  kLEAKY_RELU,    // alpha: negative slope (default 0.01)
  kHARD_SWISH,    // x * relu6(x + 3) / 6
  kHARD_SIGMOID,  // max(0, min(1, alpha * x + beta)); alpha 0.2, beta 0.5 by default (ONNX)
  kTANH,
  kCLIP,          // clamp to [alpha, beta]
};
enum class ElementWiseOperation { kSUM, kSUB, kPROD, kDIV, kPOW, kMIN, kMAX };
enum class PoolingType { kMAX, kAVERAGE };
enum class ResizeMode { kNEAREST, kLINEAR };
// How an output coordinate maps back to the input (ONNX coordinate_transformation_mode).
enum class ResizeCoordinateTransformation { kASYMMETRIC, kHALF_PIXEL, kPYTORCH_HALF_PIXEL, kALIGN_CORNERS };
// Nearest-neighbour rounding (ONNX nearest_mode): kFLOOR, kCEIL, round half down, round half up.
enum class ResizeRoundMode { kFLOOR, kCEIL, kHALF_DOWN, kHALF_UP };
enum class MatrixOperation { kNONE, kTRANSPOSE };  // kTRANSPOSE swaps the last two dimensions
enum class UnaryOperation { kEXP, kLOG, kSQRT, kRECIP, kABS, kNEG, kFLOOR, kCEIL, kROUND, kERF };
enum class ReduceOperation { kSUM, kAVG, kMAX, kMIN };

// A tensor of the network: a network input or a layer output. A lightweight handle owned by the
// NetworkDefinition; its name is the Graph value name.
class ITensor {
 public:
  const std::string& getName() const { return name_; }
  // Renames the tensor (names must be unique in the network). A tensor never renamed follows its
  // layer's name.
  void setName(const std::string& name);
  // The inferred shape (infers pending layers first; throws if one of them is invalid).
  Dims getDimensions() const;
  DType getType() const;
  bool isNetworkInput() const { return producer_ == nullptr; }
  bool isNetworkOutput() const;
  // The layer producing this tensor (nullptr for a network input).
  ILayer* getProducer() const { return producer_; }

  ITensor(const ITensor&) = delete;
  ITensor& operator=(const ITensor&) = delete;

 private:
  friend class NetworkDefinition;
  friend class ILayer;
  friend class detail::Lowering;
  friend struct detail::NetworkImpl;
  ITensor(NetworkDefinition* net, std::string name, ILayer* producer, int index)
      : net_(net), name_(std::move(name)), producer_(producer), index_(index) {}

  NetworkDefinition* net_;
  std::string name_;
  ILayer* producer_;
  int index_;
  bool user_named_ = false;
};

// A layer: one operation of the network, lowered to one or more graph nodes.
class ILayer {
 public:
  virtual ~ILayer() = default;
  LayerType getType() const { return type_; }
  const std::string& getName() const { return name_; }
  // Renames the layer (names must be unique); its nodes, weights and auto-named outputs follow.
  void setName(const std::string& name);
  int getNbInputs() const { return static_cast<int>(inputs_.size()); }
  ITensor* getInput(int i) const { return inputs_.at(static_cast<size_t>(i)); }
  int getNbOutputs() const { return static_cast<int>(outputs_.size()); }
  ITensor* getOutput(int i) const { return outputs_.at(static_cast<size_t>(i)); }
  // The graph nodes this layer lowered to (valid after the next shape inference).
  const std::vector<Node>& nodes() const { return nodes_; }

  ILayer(const ILayer&) = delete;
  ILayer& operator=(const ILayer&) = delete;

 protected:
  ILayer(NetworkDefinition* net, LayerType type) : net_(net), type_(type) {}
  // Marks the layer changed, so it and everything after it are lowered and inferred again.
  void touch();
  // Re-derives the names of outputs the user did not name (after output_node_name() changed).
  void refreshOutputNames();
  NetworkDefinition* network() const { return net_; }

 private:
  friend class NetworkDefinition;
  friend class detail::Lowering;
  friend struct detail::NetworkImpl;
  // Emits this layer's nodes and constants. Input shapes are known; nodes are inferred as emitted.
  virtual void lower(detail::Lowering& lw) = 0;
  // Name of the node writing the layer's outputs; auto-named outputs are called "<it>_output_<i>",
  // as PyTorch's ONNX exporter names them (so a SiLU layer "/model.0/act" outputs
  // "/model.0/act/Mul_output_0", like an Ultralytics export).
  virtual std::string output_node_name() const { return name_; }
  // Checks that only make sense once the whole network is defined (run by graph()).
  virtual void final_check() const {}

  NetworkDefinition* net_;
  LayerType type_;
  std::string name_;
  size_t index_ = 0;  // position in the network (layers are kept in topological order)
  std::vector<ITensor*> inputs_;
  std::vector<ITensor*> outputs_;
  std::vector<Node> nodes_;                 // lowered form
  std::vector<std::string> value_names_;    // values (intermediates, constants) this layer created
};

class IConvolutionLayer : public ILayer {
 public:
  virtual void setStride(const Dims& stride) = 0;
  virtual void setPadding(const Dims& padding) = 0;  // symmetric
  virtual void setPrePadding(const Dims& padding) = 0;
  virtual void setPostPadding(const Dims& padding) = 0;
  virtual void setDilation(const Dims& dilation) = 0;
  // Groups (default 1). Shapes can be inferred before this is called (a grouped weight count is
  // accepted provisionally, so that TensorRT's add-then-setNbGroups order works), but graph() rejects
  // a convolution whose weights only fit a group count that was never set: that is almost always a
  // channel mismatch, not an intended grouped convolution.
  virtual void setNbGroups(int64_t groups) = 0;
  // Names of the weight constants in the graph (default: "<layer>.weight" / "<layer>.bias").
  virtual void setWeightsName(const std::string& kernel, const std::string& bias = "") = 0;
  virtual Dims getStride() const = 0;
  virtual Dims getPrePadding() const = 0;
  virtual Dims getPostPadding() const = 0;
  virtual Dims getDilation() const = 0;
  virtual int64_t getNbGroups() const = 0;  // 0: not set (1 unless the weights say otherwise)
  virtual int64_t getNbOutputMaps() const = 0;
  virtual Dims getKernelSize() const = 0;
  virtual const HostTensor& getKernelWeights() const = 0;
  virtual const HostTensor& getBiasWeights() const = 0;

 protected:
  using ILayer::ILayer;
};

class IActivationLayer : public ILayer {
 public:
  virtual void setActivationType(ActivationType t) = 0;
  virtual ActivationType getActivationType() const = 0;
  virtual void setAlpha(float alpha) = 0;
  virtual void setBeta(float beta) = 0;
  virtual float getAlpha() const = 0;
  virtual float getBeta() const = 0;

 protected:
  using ILayer::ILayer;
};

class IElementWiseLayer : public ILayer {
 public:
  virtual void setOperation(ElementWiseOperation op) = 0;
  virtual ElementWiseOperation getOperation() const = 0;

 protected:
  using ILayer::ILayer;
};

class IConcatenationLayer : public ILayer {
 public:
  virtual void setAxis(int64_t axis) = 0;
  virtual int64_t getAxis() const = 0;

 protected:
  using ILayer::ILayer;
};

class ISplitLayer : public ILayer {
 public:
  virtual int64_t getAxis() const = 0;
  virtual const std::vector<int64_t>& getSizes() const = 0;

 protected:
  using ILayer::ILayer;
};

// ONNX Slice semantics: per listed axis, start/end (negative counts from the end, clamped) and step.
class ISliceLayer : public ILayer {
 public:
  virtual void setStart(const std::vector<int64_t>& starts) = 0;
  virtual void setEnd(const std::vector<int64_t>& ends) = 0;
  virtual void setAxes(const std::vector<int64_t>& axes) = 0;
  virtual void setSteps(const std::vector<int64_t>& steps) = 0;

 protected:
  using ILayer::ILayer;
};

class IPoolingLayer : public ILayer {
 public:
  virtual void setStride(const Dims& stride) = 0;
  virtual void setPadding(const Dims& padding) = 0;
  virtual void setPrePadding(const Dims& padding) = 0;
  virtual void setPostPadding(const Dims& padding) = 0;
  virtual void setCeilMode(bool ceil) = 0;
  // Average pooling: whether padded positions are left out of the divisor. Default true (TensorRT's and
  // ONNX's default); PyTorch's AvgPool2d counts them, so pass false to match a PyTorch model.
  virtual void setAverageCountExcludesPadding(bool exclude) = 0;
  virtual PoolingType getPoolingType() const = 0;
  virtual Dims getWindowSize() const = 0;
  virtual Dims getStride() const = 0;

 protected:
  using ILayer::ILayer;
};

class IResizeLayer : public ILayer {
 public:
  // Scales per dimension (all dims, or only the spatial ones); output = floor(input * scale).
  virtual void setScales(const std::vector<float>& scales) = 0;
  // Output size (all dims, or only the spatial ones); replaces scales.
  virtual void setOutputDimensions(const Dims& dims) = 0;
  virtual void setResizeMode(ResizeMode mode) = 0;
  virtual void setCoordinateTransformation(ResizeCoordinateTransformation t) = 0;
  virtual void setNearestRounding(ResizeRoundMode m) = 0;
  virtual ResizeMode getResizeMode() const = 0;

 protected:
  using ILayer::ILayer;
};

class ISoftMaxLayer : public ILayer {
 public:
  virtual void setAxis(int64_t axis) = 0;
  virtual int64_t getAxis() const = 0;

 protected:
  using ILayer::ILayer;
};

class IMatrixMultiplyLayer : public ILayer {
 public:
  virtual void setOperation(int index, MatrixOperation op) = 0;
  virtual MatrixOperation getOperation(int index) const = 0;

 protected:
  using ILayer::ILayer;
};

// TensorRT's shuffle: first transpose, then reshape, then second transpose; each part optional.
// Reshape dims follow ONNX Reshape: 0 copies the input extent, -1 is inferred (at most one).
class IShuffleLayer : public ILayer {
 public:
  virtual void setFirstTranspose(const std::vector<int64_t>& perm) = 0;
  virtual void setReshapeDimensions(const Dims& dims) = 0;
  virtual void setSecondTranspose(const std::vector<int64_t>& perm) = 0;

 protected:
  using ILayer::ILayer;
};

class IConstantLayer : public ILayer {
 public:
  virtual const HostTensor& getWeights() const = 0;

 protected:
  using ILayer::ILayer;
};

class IUnaryLayer : public ILayer {
 public:
  virtual void setOperation(UnaryOperation op) = 0;
  virtual UnaryOperation getOperation() const = 0;

 protected:
  using ILayer::ILayer;
};

class IReduceLayer : public ILayer {
 public:
  virtual void setOperation(ReduceOperation op) = 0;
  virtual void setReduceAxes(const std::vector<int64_t>& axes) = 0;
  virtual void setKeepDimensions(bool keep) = 0;

 protected:
  using ILayer::ILayer;
};

class NetworkDefinition {
 public:
  explicit NetworkDefinition(std::string name = "network");
  ~NetworkDefinition();
  NetworkDefinition(const NetworkDefinition&) = delete;
  NetworkDefinition& operator=(const NetworkDefinition&) = delete;

  void setName(const std::string& name);
  const std::string& getName() const;

  ITensor* addInput(const std::string& name, DType type, const Dims& dims);
  void markOutput(ITensor& tensor);
  void unmarkOutput(ITensor& tensor);

  // Weights: [out, C/groups, k...] (or any shape with that many elements); bias: out elements or empty.
  IConvolutionLayer* addConvolution(ITensor& input, int64_t nbOutputMaps, const Dims& kernelSize,
                                    HostTensor kernelWeights, HostTensor biasWeights = {});
  // alpha/beta: see ActivationType; unset means the ONNX default of the lowered op.
  IActivationLayer* addActivation(ITensor& input, ActivationType type, std::optional<float> alpha = std::nullopt,
                                  std::optional<float> beta = std::nullopt);
  // NumPy broadcasting, as ONNX.
  IElementWiseLayer* addElementwise(ITensor& a, ITensor& b, ElementWiseOperation op);
  IConcatenationLayer* addConcat(const std::vector<ITensor*>& inputs, int64_t axis);
  ISplitLayer* addSplit(ITensor& input, int64_t axis, const std::vector<int64_t>& sizes);
  ISliceLayer* addSlice(ITensor& input, const std::vector<int64_t>& starts, const std::vector<int64_t>& ends,
                        const std::vector<int64_t>& axes = {}, const std::vector<int64_t>& steps = {});
  // stride: default = window (PyTorch); padding: symmetric, default 0.
  IPoolingLayer* addPooling(ITensor& input, PoolingType type, const Dims& window, const Dims& stride = {},
                            const Dims& padding = {});
  // Nearest defaults to Ultralytics/PyTorch's export (asymmetric coordinates, floor rounding); linear
  // to half-pixel (PyTorch's align_corners=False).
  IResizeLayer* addResize(ITensor& input, const std::vector<float>& scales, ResizeMode mode = ResizeMode::kNEAREST);
  IResizeLayer* addResizeToSize(ITensor& input, const Dims& sizes, ResizeMode mode = ResizeMode::kNEAREST);
  ISoftMaxLayer* addSoftmax(ITensor& input, int64_t axis);
  IMatrixMultiplyLayer* addMatMul(ITensor& a, MatrixOperation opA, ITensor& b, MatrixOperation opB);
  IMatrixMultiplyLayer* addMatMul(ITensor& a, bool transA, ITensor& b, bool transB);
  IShuffleLayer* addShuffle(ITensor& input);
  IShuffleLayer* addReshape(ITensor& input, const Dims& dims);
  IShuffleLayer* addTranspose(ITensor& input, const std::vector<int64_t>& perm);
  // A constant tensor (an initializer); weights must have prod(dims) elements.
  IConstantLayer* addConstant(const Dims& dims, HostTensor weights);
  IUnaryLayer* addUnary(ITensor& input, UnaryOperation op);
  IReduceLayer* addReduce(ITensor& input, ReduceOperation op, const std::vector<int64_t>& axes, bool keepDims);

  int getNbLayers() const;
  ILayer* getLayer(int i) const;
  int getNbInputs() const;
  ITensor* getInput(int i) const;
  int getNbOutputs() const;
  ITensor* getOutput(int i) const;

  // Model metadata, as Ultralytics writes it into its exports (strings, Python-literal style).
  void setMetadata(const std::string& key, const std::string& value);
  const std::map<std::string, std::string>& getMetadata() const;
  // names = "{0: 'person', 1: 'bicycle', ...}"
  void setClassNames(const std::vector<std::string>& names);
  // stride = "32"
  void setStride(int64_t stride);
  // imgsz = "[640, 640]"
  void setImgsz(int64_t height, int64_t width);

  // The graph, shapes inferred (a copy; constants share storage). Throws if no output is marked or a
  // layer is invalid.
  Graph graph();
  // Moves the graph out; the network is left empty.
  Graph takeGraph();

 private:
  friend class ITensor;
  friend class ILayer;
  friend class detail::Lowering;
  friend struct detail::NetworkImpl;
  std::unique_ptr<detail::NetworkImpl> impl_;
};

// Python repr of a list of class names as an Ultralytics "names" dict: {0: 'person', 1: 'bicycle'}.
std::string format_names_metadata(const std::vector<std::string>& names);

}  // namespace kestrel
