// Copy elimination. Three kinds of layers become views instead of kernels:
//   Reshape / Flatten / Squeeze / Unsqueeze / Identity of a dense row-major tensor: an alias
//   Slice / Split: a box (start + step per dim) of the input
//   Concat: each input produced by a layer becomes a box of the output, so its producer writes in
//     place; a run of inputs that are Slice/Split views tiling one tensor makes that tensor the box
//     (YOLOv8's C2f: cv1's output lands in the first channels of the block's concat).
// A tensor may become a view only if every layer touching it (and its own views, transitively)
// accepts the resulting strides: Access::Any always, Access::ChannelsLast only for channel slices of
// channels-last tensors, Access::Dense never.
#include <algorithm>
#include <functional>

#include "backend/cuda/strided.h"
#include "builder/build_plan.h"
#include "ir/op_registry.h"

namespace kestrel::bld {

namespace {

using cuda::Access;

bool is_alias_op(const std::string& op) {
  return op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze" || op == "Identity";
}

class ViewPlanner {
 public:
  explicit ViewPlanner(BuildPlan& p) : p_(p) {}

  void run() {
    for (size_t i = 0; i < p_.layers.size(); ++i)
      if (!p_.layers[i].removed && is_alias_op(p_.layers[i].op)) try_alias(p_.layers[i]);
    for (size_t i = 0; i < p_.layers.size(); ++i) {
      BLayer& l = p_.layers[i];
      if (l.removed) continue;
      if (l.op == "Slice") try_slice(l);
      else if (l.op == "Split") try_split(l);
    }
    for (size_t i = 0; i < p_.layers.size(); ++i)
      if (!p_.layers[i].removed && p_.layers[i].op == "Concat") try_concat(p_.layers[i]);
  }

 private:
  std::vector<int> children(int t) const {
    std::vector<int> c;
    for (size_t i = 0; i < p_.tensors.size(); ++i)
      if (p_.tensors[i].view_of == t) c.push_back(static_cast<int>(i));
    return c;
  }

  // The strictest access any layer (or view of it) needs of tensor t.
  Access req(int t) const {
    Access r = Access::Any;
    auto up = [&](Access a) { r = static_cast<Access>(std::max(static_cast<int>(r), static_cast<int>(a))); };
    for (const BLayer& l : p_.layers) {
      if (l.removed) continue;
      const cuda::OpTraits tr = cuda::op_traits(l.op);
      for (size_t i = 0; i < l.in.size(); ++i)
        if (l.in[i] == t) up(tr.input(i));
      for (size_t i = 0; i < l.out.size(); ++i)
        if (l.out[i] == t) up(tr.output(i));
    }
    for (int c : children(t)) up(p_.tensors[c].view_kind == ViewKind::Alias ? Access::Dense : req(c));
    return r;
  }

  // t is a root, or a channel box of a channel box ... of a channels-last root.
  bool channel_chain(int t) const {
    const BTensor& x = p_.tensors[t];
    if (!x.channels_last || x.shape.size() != 4) return false;
    if (!x.is_view()) return true;
    return x.view_kind == ViewKind::Box && is_channel_box(x, p_.tensors[x.view_of]) && channel_chain(x.view_of);
  }

  // t's storage is dense row-major: a row-major root or an alias of one.
  bool dense_chain(int t) const {
    const BTensor& x = p_.tensors[t];
    if (x.channels_last) return false;
    if (!x.is_view()) return true;
    return x.view_kind == ViewKind::Alias && dense_chain(x.view_of);
  }

  static bool is_channel_box(const BTensor& child, const BTensor& parent) {
    if (child.shape.size() != 4 || parent.shape.size() != 4) return false;
    for (int d = 0; d < 4; ++d) {
      if (child.box_step[d] != 1) return false;
      if (d != 1 && (child.box_start[d] != 0 || child.shape[d] != parent.shape[d])) return false;
    }
    return true;
  }

  // Makes t a box of parent if every access allows it.
  bool try_box(int t, int parent, std::vector<int64_t> start, std::vector<int64_t> step) {
    BTensor& x = p_.tensors[t];
    const BTensor& par = p_.tensors[parent];
    if (x.is_view() || x.storage != rt::Storage::Arena || par.storage != rt::Storage::Arena) return false;
    if (x.dtype != par.dtype || x.shape.size() != par.shape.size() || t == parent) return false;
    const Access r = req(t);
    if (r == Access::Dense) return false;
    BTensor probe = x;
    probe.box_start = start;
    probe.box_step = step;
    if (r == Access::ChannelsLast &&
        !(x.channels_last && is_channel_box(probe, par) && channel_chain(parent)))
      return false;
    x.view_of = parent;
    x.view_kind = ViewKind::Box;
    x.box_start = std::move(start);
    x.box_step = std::move(step);
    x.channels_last = par.channels_last && x.shape.size() == 4;
    return true;
  }

  void try_alias(BLayer& l) {
    const int x = l.in[0], y = l.out[0];
    const BTensor& xt = p_.tensors[x];
    BTensor& yt = p_.tensors[y];
    if (xt.storage != rt::Storage::Arena || yt.storage != rt::Storage::Arena || yt.is_view()) return;
    if (xt.dtype != yt.dtype || yt.channels_last || !dense_chain(x)) return;
    yt.view_of = x;
    yt.view_kind = ViewKind::Alias;
    l.removed = true;
    ++p_.eliminated;
  }

  void try_slice(BLayer& l) {
    const int x = l.in[0], y = l.out[0];
    if (!l.attrs.has("starts")) return;
    Node n{l.name, l.op, {}, {}, {}};
    SliceParams sp = resolve_slice(p_.tensors[x].shape, l.attrs.ints("starts"), l.attrs.ints("ends"),
                                   l.attrs.ints("axes", std::vector<int64_t>{}), l.attrs.ints("steps", std::vector<int64_t>{}), n);
    for (int64_t s : sp.steps)
      if (s <= 0) return;  // negative steps would need negative strides
    if (try_box(y, x, sp.starts, sp.steps)) {
      l.removed = true;
      ++p_.eliminated;
    }
  }

  void try_split(BLayer& l) {
    const int x = l.in[0];
    const int64_t axis = l.attrs.i("axis", 0);
    const size_t r = p_.tensors[x].shape.size();
    int64_t start = 0;
    std::vector<int64_t> skipped;
    for (size_t k = 0; k < l.out.size(); ++k) {
      const int y = l.out[k];
      std::vector<int64_t> st(r, 0), step(r, 1);
      st[axis] = start;
      start += p_.tensors[y].shape[axis];
      if (try_box(y, x, st, step)) skipped.push_back(static_cast<int64_t>(k));
    }
    if (skipped.size() == l.out.size()) {
      l.removed = true;
      ++p_.eliminated;
    } else if (!skipped.empty()) {
      l.attrs.set("kestrel_skip_out", skipped);
    }
  }

  // Inputs k.. of a concat that are boxes of one root tiling it along `axis` in order: their count.
  size_t tiling_run(const BLayer& l, size_t k, int64_t axis) const {
    const BTensor& first = p_.tensors[l.in[k]];
    if (first.view_kind != ViewKind::Box) return 0;
    const int root = first.view_of;
    const BTensor& R = p_.tensors[root];
    if (R.is_view()) return 0;
    int64_t covered = 0;
    size_t j = k;
    for (; j < l.in.size() && covered < R.shape[axis]; ++j) {
      const BTensor& b = p_.tensors[l.in[j]];
      if (b.view_of != root || b.view_kind != ViewKind::Box) return 0;
      for (size_t d = 0; d < R.shape.size(); ++d) {
        if (b.box_step[d] != 1) return 0;
        const int64_t want = static_cast<int64_t>(d) == axis ? covered : 0;
        if (b.box_start[d] != want) return 0;
        if (static_cast<int64_t>(d) != axis && b.shape[d] != R.shape[d]) return 0;
      }
      covered += b.shape[axis];
    }
    return covered == R.shape[axis] ? j - k : 0;
  }

  void try_concat(BLayer& l) {
    const int y = l.out[0];
    const BTensor& yt = p_.tensors[y];
    if (yt.storage != rt::Storage::Arena || yt.is_view()) return;
    const int64_t axis = normalize_axis(l.attrs.i("axis"), static_cast<int64_t>(yt.shape.size()), Node{l.name, l.op, {}, {}, {}});
    std::vector<int64_t> skipped;
    int64_t offset = 0;
    for (size_t k = 0; k < l.in.size();) {
      const int x = l.in[k];
      const size_t run = tiling_run(l, k, axis);
      const int cand = run ? p_.tensors[x].view_of : x;
      const size_t span = run ? run : 1;
      const int64_t extent = p_.tensors[cand].shape[axis];
      bool once = std::count(l.in.begin(), l.in.end(), cand) == (run ? 0 : 1);
      if (once && cand >= 0 && producers(cand) && p_.tensors[cand].shape.size() == yt.shape.size()) {
        std::vector<int64_t> st(yt.shape.size(), 0), step(yt.shape.size(), 1);
        st[axis] = offset;
        if (try_box(cand, y, st, step))
          for (size_t j = k; j < k + span; ++j) skipped.push_back(static_cast<int64_t>(j));
      }
      offset += extent;
      k += span;
    }
    if (skipped.size() == l.in.size()) {
      l.removed = true;
      ++p_.eliminated;
    } else if (!skipped.empty()) {
      l.attrs.set("kestrel_skip_in", skipped);
    }
  }

  // Whether a live layer writes t (a tensor nobody writes, e.g. an input, cannot move).
  bool producers(int t) const {
    for (const BLayer& l : p_.layers)
      if (!l.removed && std::find(l.out.begin(), l.out.end(), t) != l.out.end()) return true;
    return false;
  }

  BuildPlan& p_;
};

void resolve_one(BuildPlan& p, int t, std::vector<int>& state) {
  if (state[t] == 2) return;
  KESTREL_CHECK(state[t] == 0, "internal: cycle in tensor views at '", p.tensors[t].name, "'");
  state[t] = 1;
  BTensor& x = p.tensors[t];
  if (!x.is_view()) {
    x.strides = x.channels_last ? cuda::channels_last_strides(x.shape) : cuda::row_major_strides(x.shape);
    x.elem_offset = 0;
    x.root = t;
  } else {
    resolve_one(p, x.view_of, state);
    const BTensor& par = p.tensors[x.view_of];
    x.root = par.root;
    if (x.view_kind == ViewKind::Box) {
      x.strides.assign(x.shape.size(), 0);
      x.elem_offset = par.elem_offset;
      for (size_t d = 0; d < x.shape.size(); ++d) {
        x.strides[d] = par.strides[d] * x.box_step[d];
        x.elem_offset += x.box_start[d] * par.strides[d];
      }
    } else {
      cuda::TensorMeta m;
      m.shape = par.shape;
      m.strides = par.strides;
      KESTREL_CHECK(m.dense_row_major(), "internal: alias '", x.name, "' of a non-dense tensor '", par.name, "'");
      x.strides = cuda::row_major_strides(x.shape);
      x.elem_offset = par.elem_offset;
    }
  }
  state[t] = 2;
}

}  // namespace

void plan_views(BuildPlan& p) { ViewPlanner(p).run(); }

void resolve_layout(BuildPlan& p) {
  std::vector<int> state(p.tensors.size(), 0);
  for (size_t t = 0; t < p.tensors.size(); ++t) resolve_one(p, static_cast<int>(t), state);
}

cuda::TensorMeta meta_of(const BTensor& t) {
  cuda::TensorMeta m;
  m.dtype = t.dtype;
  m.shape = t.shape;
  m.strides = t.strides;
  m.channels_last = t.channels_last;
  return m;
}

std::vector<cuda::TensorMeta> metas_of(const BuildPlan& p) {
  std::vector<cuda::TensorMeta> m;
  m.reserve(p.tensors.size());
  for (const BTensor& t : p.tensors) m.push_back(meta_of(t));
  return m;
}

cuda::LayerSpec layer_spec(const BuildPlan& p, const BLayer& l, const std::vector<cuda::TensorMeta>& metas) {
  return cuda::make_layer_spec(l.name, l.op, l.attrs, l.in, l.out, metas, p.precision, p.tf32);
}

}  // namespace kestrel::bld
