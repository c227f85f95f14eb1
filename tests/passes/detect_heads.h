#pragma once
// Miniature YOLO models whose detect decode is written op by op the way the Ultralytics exports
// write it (v8/11: DFL; v5: anchor grids), for the fuse_detect_head tests.
#include "graph_builder.h"

namespace kestrel::test {

struct MiniHead {
  int64_t imgsz = 64, nc = 3, reg_max = 4, na = 2;
  std::vector<int64_t> strides = {8, 16};
  float anchor_offset = 0.5f;  // v8 anchor points x + offset (the export uses 0.5)
  float grid_offset = 0.5f;    // v5 grid buffers hold x - offset
  std::vector<float> anchors = {10, 13, 16, 30, 30, 61, 62, 45};  // v5: per level na (w, h), pixels
};

inline std::vector<std::string> head_maps(GraphBuilder& b, const MiniHead& h, int64_t channels) {
  const auto x = b.input("images", {1, 3, h.imgsz, h.imgsz});
  std::vector<std::string> maps;
  for (int64_t s : h.strides) maps.push_back(b.conv(x, 3, channels, 3, s));  // [1, C, imgsz/s, imgsz/s]
  return maps;
}

inline Attributes shape_attr(std::vector<int64_t> s) { return attrs({{"shape", std::move(s)}}); }

inline Graph mini_v8(const MiniHead& h) {
  GraphBuilder b;
  const int64_t R = h.reg_max, C = 4 * R + h.nc;
  const auto maps = head_maps(b, h, C);
  std::vector<std::string> flat;
  std::vector<float> anchor_x, anchor_y, stride_row;
  int64_t A = 0;
  for (size_t i = 0; i < maps.size(); ++i) {
    const int64_t n = h.imgsz / h.strides[i];
    flat.push_back(b.node("Reshape", {maps[i]}, shape_attr({1, C, n * n})));
    for (int64_t y = 0; y < n; ++y)
      for (int64_t x = 0; x < n; ++x) {
        anchor_x.push_back(static_cast<float>(x) + h.anchor_offset);
        anchor_y.push_back(static_cast<float>(y) + h.anchor_offset);
        stride_row.push_back(static_cast<float>(h.strides[i]));
      }
    A += n * n;
  }
  std::vector<float> anchors = anchor_x;
  anchors.insert(anchors.end(), anchor_y.begin(), anchor_y.end());
  const auto cat = b.node("Concat", flat, attrs({{"axis", int64_t{2}}}), "/model.22/Concat_3");
  const auto parts = b.node_n("Split", {cat}, attrs({{"axis", int64_t{1}}, {"split", std::vector<int64_t>{4 * R, h.nc}}}), 2,
                              "/model.22/Split");
  const auto t = b.node("Transpose", {b.node("Reshape", {parts[0]}, shape_attr({1, 4, R, A}))},
                        attrs({{"perm", std::vector<int64_t>{0, 2, 1, 3}}}), "/model.22/dfl/Transpose");
  std::vector<float> bins(R);
  for (int64_t j = 0; j < R; ++j) bins[j] = static_cast<float>(j);
  const auto dfl = b.node("Conv", {b.node("Softmax", {t}, attrs({{"axis", int64_t{1}}})),
                                   b.constant("dfl.w", HostTensor::from_f32({1, R, 1, 1}, bins))},
                          attrs({{"kernel_shape", std::vector<int64_t>{1, 1}}}), "/model.22/dfl/conv/Conv");
  const auto d = b.node("Reshape", {dfl}, shape_attr({1, 4, A}));
  const auto lt = b.node("Slice", {d}, attrs({{"starts", std::vector<int64_t>{0}}, {"ends", std::vector<int64_t>{2}},
                                              {"axes", std::vector<int64_t>{1}}}));
  const auto rb = b.node("Slice", {d}, attrs({{"starts", std::vector<int64_t>{2}}, {"ends", std::vector<int64_t>{4}},
                                              {"axes", std::vector<int64_t>{1}}}));
  const auto an = b.constant("anchors", HostTensor::from_f32({1, 2, A}, anchors));
  const auto x1y1 = b.node("Sub", {an, lt}), x2y2 = b.node("Add", {an, rb});
  const auto c = b.node("Div", {b.node("Add", {x1y1, x2y2}), b.constant("two", HostTensor::scalar_f32(2.f))});
  const auto box = b.node("Concat", {c, b.node("Sub", {x2y2, x1y1})}, attrs({{"axis", int64_t{1}}}));
  const auto dbox = b.node("Mul", {box, b.constant("strides", HostTensor::from_f32({1, A}, stride_row))});
  b.output(b.node("Concat", {dbox, b.node("Sigmoid", {parts[1]})}, attrs({{"axis", int64_t{1}}}), "/model.22/Concat_5"));
  return b.build();
}

inline Graph mini_v5(const MiniHead& h) {
  GraphBuilder b;
  const int64_t no = 5 + h.nc, na = h.na;
  const auto maps = head_maps(b, h, na * no);
  std::vector<std::string> rows;
  for (size_t i = 0; i < maps.size(); ++i) {
    const int64_t n = h.imgsz / h.strides[i];
    const auto t = b.node("Transpose", {b.node("Reshape", {maps[i]}, shape_attr({1, na, no, n, n}))},
                          attrs({{"perm", std::vector<int64_t>{0, 1, 3, 4, 2}}}));
    const auto p = b.node_n("Split", {b.node("Sigmoid", {t})},
                            attrs({{"axis", int64_t{4}}, {"split", std::vector<int64_t>{2, 2, no - 4}}}), 3);
    std::vector<float> grid, agrid;
    for (int64_t a = 0; a < na; ++a)
      for (int64_t y = 0; y < n; ++y)
        for (int64_t x = 0; x < n; ++x) {
          grid.push_back(static_cast<float>(x) - h.grid_offset);
          grid.push_back(static_cast<float>(y) - h.grid_offset);
          agrid.push_back(h.anchors[(i * na + a) * 2]);
          agrid.push_back(h.anchors[(i * na + a) * 2 + 1]);
        }
    const std::string L = std::to_string(i);
    const auto two = b.constant("two" + L, HostTensor::scalar_f32(2.f));
    const auto xy = b.node("Mul", {b.node("Add", {b.node("Mul", {p[0], two}),
                                                  b.constant("grid" + L, HostTensor::from_f32({1, na, n, n, 2}, grid))}),
                                   b.constant("stride" + L, HostTensor::scalar_f32(static_cast<float>(h.strides[i])))});
    const auto wh = b.node("Mul", {b.node("Pow", {b.node("Mul", {p[1], two}), two}),
                                   b.constant("agrid" + L, HostTensor::from_f32({1, na, n, n, 2}, agrid))});
    rows.push_back(b.node("Reshape", {b.node("Concat", {xy, wh, p[2]}, attrs({{"axis", int64_t{4}}}))},
                          shape_attr({1, na * n * n, no})));
  }
  b.output(b.node("Concat", rows, attrs({{"axis", int64_t{1}}}), "/model.24/Concat_3"));
  return b.build();
}

}  // namespace kestrel::test
