// YOLO11 detection (ultralytics/cfg/models/11/yolo11.yaml), every scale. As in Ultralytics' parse_model,
// the m/l/x scales turn on c3k in *every* C3k2 block (args[3] = True when scale in "mlx"), not only in
// those the yaml marks True; n/s keep the yaml's flags. The Detect head is the non-legacy one (depthwise
// class branch), which parse_model selects once a C3k2 is seen.
#include "network/zoo_blocks.h"

namespace kestrel::zoo::detail {

Graph build_yolo11(const std::string& name, const Scale& sc, const BuildOptions& o) {
  check_options(name, o);
  NetworkDefinition net(name);
  Blocks b(net, o.seed);
  auto ch = [&](int64_t c) { return scaled_channels(c, sc); };
  auto rep = [&](int64_t n) { return scaled_repeats(n, sc); };
  auto M = model_layer;
  const char scale = name.back();
  const bool mlx = scale == 'm' || scale == 'l' || scale == 'x';
  auto c3k = [&](bool yaml_flag) { return yaml_flag || mlx; };

  ITensor* images = net.addInput("images", DType::F32, {o.batch, 3, o.imgsz, o.imgsz});
  // backbone
  ITensor* x0 = b.conv(images, M(0), ch(64), 3, 2);  // P1/2
  ITensor* x1 = b.conv(x0, M(1), ch(128), 3, 2);     // P2/4
  ITensor* x2 = b.c3k2(x1, M(2), ch(256), rep(2), c3k(false), 0.25);
  ITensor* x3 = b.conv(x2, M(3), ch(256), 3, 2);  // P3/8
  ITensor* x4 = b.c3k2(x3, M(4), ch(512), rep(2), c3k(false), 0.25);
  ITensor* x5 = b.conv(x4, M(5), ch(512), 3, 2);  // P4/16
  ITensor* x6 = b.c3k2(x5, M(6), ch(512), rep(2), c3k(true));
  ITensor* x7 = b.conv(x6, M(7), ch(1024), 3, 2);  // P5/32
  ITensor* x8 = b.c3k2(x7, M(8), ch(1024), rep(2), c3k(true));
  ITensor* x9 = b.sppf(x8, M(9), ch(1024), 5);
  ITensor* x10 = b.c2psa(x9, M(10), ch(1024), rep(2));
  // head
  ITensor* x11 = b.upsample(x10, M(11));
  ITensor* x12 = b.concat({x11, x6}, M(12));
  ITensor* x13 = b.c3k2(x12, M(13), ch(512), rep(2), c3k(false));
  ITensor* x14 = b.upsample(x13, M(14));
  ITensor* x15 = b.concat({x14, x4}, M(15));
  ITensor* x16 = b.c3k2(x15, M(16), ch(256), rep(2), c3k(false));  // P3/8-small
  ITensor* x17 = b.conv(x16, M(17), ch(256), 3, 2);
  ITensor* x18 = b.concat({x17, x13}, M(18));
  ITensor* x19 = b.c3k2(x18, M(19), ch(512), rep(2), c3k(false));  // P4/16-medium
  ITensor* x20 = b.conv(x19, M(20), ch(512), 3, 2);
  ITensor* x21 = b.concat({x20, x10}, M(21));
  ITensor* x22 = b.c3k2(x21, M(22), ch(1024), rep(2), c3k(true));  // P5/32-large
  ITensor* out = b.detect({x16, x19, x22}, M(23), o.num_classes, /*legacy=*/false, o.imgsz);
  net.markOutput(*out);
  set_detect_metadata(net, name, o);
  return net.takeGraph();
}

}  // namespace kestrel::zoo::detail
