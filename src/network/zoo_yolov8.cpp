// YOLOv8 detection (ultralytics/cfg/models/v8/yolov8.yaml), every scale. Channel and repeat arguments
// are the yaml's (the l/x base values); scaled_channels / scaled_repeats apply the scale's multipliers
// the way Ultralytics' parse_model does.
#include "network/zoo_blocks.h"

namespace kestrel::zoo::detail {

Graph build_yolov8(const std::string& name, const Scale& sc, const BuildOptions& o) {
  check_options(name, o);
  NetworkDefinition net(name);
  Blocks b(net, o.seed);
  auto ch = [&](int64_t c) { return scaled_channels(c, sc); };
  auto rep = [&](int64_t n) { return scaled_repeats(n, sc); };
  auto M = model_layer;

  ITensor* images = net.addInput("images", DType::F32, {o.batch, 3, o.imgsz, o.imgsz});
  // backbone
  ITensor* x0 = b.conv(images, M(0), ch(64), 3, 2);  // P1/2
  ITensor* x1 = b.conv(x0, M(1), ch(128), 3, 2);     // P2/4
  ITensor* x2 = b.c2f(x1, M(2), ch(128), rep(3), true);
  ITensor* x3 = b.conv(x2, M(3), ch(256), 3, 2);  // P3/8
  ITensor* x4 = b.c2f(x3, M(4), ch(256), rep(6), true);
  ITensor* x5 = b.conv(x4, M(5), ch(512), 3, 2);  // P4/16
  ITensor* x6 = b.c2f(x5, M(6), ch(512), rep(6), true);
  ITensor* x7 = b.conv(x6, M(7), ch(1024), 3, 2);  // P5/32
  ITensor* x8 = b.c2f(x7, M(8), ch(1024), rep(3), true);
  ITensor* x9 = b.sppf(x8, M(9), ch(1024), 5);
  // head
  ITensor* x10 = b.upsample(x9, M(10));
  ITensor* x11 = b.concat({x10, x6}, M(11));
  ITensor* x12 = b.c2f(x11, M(12), ch(512), rep(3), false);
  ITensor* x13 = b.upsample(x12, M(13));
  ITensor* x14 = b.concat({x13, x4}, M(14));
  ITensor* x15 = b.c2f(x14, M(15), ch(256), rep(3), false);  // P3/8-small
  ITensor* x16 = b.conv(x15, M(16), ch(256), 3, 2);
  ITensor* x17 = b.concat({x16, x12}, M(17));
  ITensor* x18 = b.c2f(x17, M(18), ch(512), rep(3), false);  // P4/16-medium
  ITensor* x19 = b.conv(x18, M(19), ch(512), 3, 2);
  ITensor* x20 = b.concat({x19, x9}, M(20));
  ITensor* x21 = b.c2f(x20, M(21), ch(1024), rep(3), false);  // P5/32-large
  ITensor* out = b.detect({x15, x18, x21}, M(22), o.num_classes, /*legacy=*/true, o.imgsz);
  net.markOutput(*out);
  set_detect_metadata(net, name, o);
  return net.takeGraph();
}

}  // namespace kestrel::zoo::detail
