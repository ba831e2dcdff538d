#include "ml/graph.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace corral::ml {
namespace {

[[noreturn]] void fail(std::string_view op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

std::string shapes(const Tensor& a, const Tensor& b) {
  return a.node().shape_string() + " and " + b.node().shape_string();
}

Graph& graph_of(std::string_view op, const Tensor& a) {
  if (!a.valid()) fail(op, "input tensor is empty");
  return *a.graph();
}

void same_graph(std::string_view op, const Tensor& a, const Tensor& b) {
  if (b.valid() && b.graph() != a.graph()) fail(op, "inputs belong to different graphs");
}

void require_dtype(std::string_view op, const Tensor& t, std::initializer_list<DType> allowed,
                   std::string_view role) {
  for (DType d : allowed) {
    if (t.dtype() == d) return;
  }
  fail(op, std::string(role) + " " + t.node().shape_string() + " has an unsupported dtype");
}

Node make_node(OpParams op, DType t, const Shape& ne, std::initializer_list<Tensor> srcs) {
  Node n;
  n.op = op;
  n.dtype = t;
  n.ne = ne;
  n.nb = contiguous_strides(t, ne);
  int i = 0;
  for (const Tensor& s : srcs) n.src[i++] = s.valid() ? s.id() : -1;
  return n;
}

// b repeats to a's shape.
bool can_repeat(const Shape& b, const Shape& a) {
  for (int i = 0; i < kMaxDims; ++i) {
    if (b[i] == 0 || a[i] % b[i] != 0) return false;
  }
  return true;
}

Tensor binary(std::string_view name, OpParams op, Tensor a, Tensor b) {
  Graph& g = graph_of(name, a);
  same_graph(name, a, b);
  if (!b.valid()) fail(name, "second input is empty");
  require_dtype(name, a, {DType::F32}, "a");
  require_dtype(name, b, {DType::F32}, "b");
  if (!can_repeat(b.shape(), a.shape())) fail(name, shapes(a, b) + ": b does not broadcast to a");
  return g.add(make_node(op, DType::F32, a.shape(), {a, b}));
}

Tensor unary(std::string_view name, OpParams op, Tensor a) {
  Graph& g = graph_of(name, a);
  require_dtype(name, a, {DType::F32}, "input");
  return g.add(make_node(op, DType::F32, a.shape(), {a}));
}

Tensor view_node(Tensor a, const Shape& ne, const Strides& nb, size_t offset) {
  Graph& g = *a.graph();
  Node n = make_node(op::View{}, a.dtype(), ne, {a});
  n.nb = nb;
  const int root = g.storage_root(a.id());
  n.view_src = root;
  n.view_offset = (a.id() == root ? 0 : a.node().view_offset) + offset;
  return g.add(std::move(n));
}

}  // namespace

Tensor Graph::leaf(DType t, std::initializer_list<int64_t> ne, void* data, std::string name) {
  Shape s{1, 1, 1, 1};
  if (ne.size() > kMaxDims) fail("leaf", "more than 4 dimensions");
  std::copy(ne.begin(), ne.end(), s.begin());
  return leaf(t, s, data, std::move(name));
}

Tensor Graph::leaf(DType t, const Shape& ne, void* data, std::string name) {
  for (int64_t d : ne) {
    if (d < 0) fail("leaf", "negative dimension");
  }
  if (ne[0] % block_size(t) != 0) {
    fail("leaf", std::string(dtype_name(t)) + " rows of " + std::to_string(ne[0]) +
                     " elements are not whole blocks of " + std::to_string(block_size(t)));
  }
  Node n = make_node(op::Leaf{}, t, ne, {});
  n.data = data;
  n.name = std::move(name);
  return add(std::move(n));
}

Tensor Graph::add(Node n) {
  nodes_.push_back(std::move(n));
  return Tensor(this, static_cast<int>(nodes_.size()) - 1);
}

int Graph::storage_root(int id) const {
  const Node& n = nodes_[id];
  return n.view_src >= 0 ? n.view_src : id;
}

Tensor reshape(Tensor a, std::initializer_list<int64_t> ne) {
  graph_of("reshape", a);
  Shape s{1, 1, 1, 1};
  if (ne.size() > kMaxDims) fail("reshape", "more than 4 dimensions");
  std::copy(ne.begin(), ne.end(), s.begin());
  if (!a.node().is_contiguous()) {
    fail("reshape", a.node().shape_string() + " is not contiguous; use cont() first");
  }
  if (s[0] * s[1] * s[2] * s[3] != a.nelements() || s[0] % block_size(a.dtype()) != 0) {
    Node tmp;
    tmp.ne = s;
    tmp.dtype = a.dtype();
    fail("reshape", a.node().shape_string() + " cannot become " + tmp.shape_string());
  }
  return view_node(a, s, contiguous_strides(a.dtype(), s), 0);
}

Tensor view(Tensor a, const Shape& ne, const Strides& nb, size_t offset) {
  graph_of("view", a);
  Node probe;
  probe.dtype = a.dtype();
  probe.ne = ne;
  probe.nb = nb;
  if (ne[0] % block_size(a.dtype()) != 0) fail("view", "rows are not whole blocks");
  if (offset + probe.nbytes() > a.node().nbytes()) {
    fail("view", probe.shape_string() + " at offset " + std::to_string(offset) +
                     " reaches past the end of " + a.node().shape_string());
  }
  return view_node(a, ne, nb, offset);
}

Tensor permute(Tensor a, int ax0, int ax1, int ax2, int ax3) {
  graph_of("permute", a);
  const int axes[4] = {ax0, ax1, ax2, ax3};
  bool seen[4] = {};
  for (int ax : axes) {
    if (ax < 0 || ax > 3 || seen[ax]) fail("permute", "axes must be a permutation of 0..3");
    seen[ax] = true;
  }
  if (is_quantized(a.dtype()) && ax0 != 0) fail("permute", "cannot move the block axis");
  Shape ne{};
  Strides nb{};
  for (int i = 0; i < 4; ++i) {
    ne[axes[i]] = a.ne(i);
    nb[axes[i]] = a.nb(i);
  }
  return view_node(a, ne, nb, 0);
}

Tensor transpose(Tensor a) { return permute(a, 1, 0, 2, 3); }

Tensor cont(Tensor a) {
  Graph& g = graph_of("cont", a);
  return g.add(make_node(op::Cont{}, a.dtype(), a.shape(), {a}));
}

Tensor cast(Tensor a, DType to) {
  Graph& g = graph_of("cast", a);
  const auto plain = {DType::F32, DType::F16, DType::BF16};
  require_dtype("cast", a, plain, "input");
  const bool ok_to = to == DType::F32 || to == DType::F16 || to == DType::BF16 ||
                     (a.dtype() == DType::F32 && (to == DType::Q8_0 || to == DType::Q4_0));
  if (!ok_to)
    fail("cast", a.node().shape_string() + " cannot be cast to " + std::string(dtype_name(to)));
  if (a.ne(0) % block_size(to) != 0) {
    fail("cast", a.node().shape_string() + ": rows are not whole " + std::string(dtype_name(to)) +
                     " blocks");
  }
  return g.add(make_node(op::Cpy{}, to, a.shape(), {a}));
}

Tensor get_rows(Tensor table, Tensor ids) {
  Graph& g = graph_of("get_rows", table);
  same_graph("get_rows", table, ids);
  require_dtype("get_rows", ids, {DType::I32}, "ids");
  if (ids.ne(1) != table.ne(2) || ids.ne(2) != table.ne(3) || ids.ne(3) != 1) {
    fail("get_rows", shapes(table, ids) + ": ids must be [n, ne2, ne3] of the table");
  }
  return g.add(make_node(op::GetRows{}, DType::F32, {table.ne(0), ids.ne(0), ids.ne(1), ids.ne(2)},
                         {table, ids}));
}

Tensor mul_mat(Tensor w, Tensor x) {
  Graph& g = graph_of("mul_mat", w);
  same_graph("mul_mat", w, x);
  require_dtype("mul_mat", x, {DType::F32}, "activations");
  if (w.dtype() == DType::I8 || w.dtype() == DType::I16 || w.dtype() == DType::I32 ||
      w.dtype() == DType::I64 || w.dtype() == DType::F64) {
    fail("mul_mat", "weights " + w.node().shape_string() + " have an unsupported dtype");
  }
  if (w.ne(0) != x.ne(0)) fail("mul_mat", shapes(w, x) + ": inner dimensions (ne0) differ");
  if (x.ne(2) % w.ne(2) != 0 || x.ne(3) % w.ne(3) != 0) {
    fail("mul_mat", shapes(w, x) + ": weights do not broadcast over the batch dims");
  }
  if (!w.node().rows_contiguous() || !x.node().rows_contiguous()) {
    fail("mul_mat", shapes(w, x) + ": rows must be contiguous");
  }
  return g.add(make_node(op::MulMat{}, DType::F32, {w.ne(1), x.ne(1), x.ne(2), x.ne(3)}, {w, x}));
}

Tensor add(Tensor a, Tensor b) { return binary("add", op::Add{}, a, b); }
Tensor sub(Tensor a, Tensor b) { return binary("sub", op::Sub{}, a, b); }
Tensor mul(Tensor a, Tensor b) { return binary("mul", op::Mul{}, a, b); }
Tensor div(Tensor a, Tensor b) { return binary("div", op::Div{}, a, b); }
Tensor scale(Tensor a, float s, float bias) { return unary("scale", op::Scale{s, bias}, a); }
Tensor rms_norm(Tensor a, float eps) { return unary("rms_norm", op::RmsNorm{eps}, a); }
Tensor silu(Tensor a) { return unary("silu", op::Silu{}, a); }
Tensor gelu(Tensor a, op::GeluForm form) { return unary("gelu", op::Gelu{form}, a); }
Tensor gelu_quick(Tensor a) { return unary("gelu_quick", op::GeluQuick{}, a); }

Tensor layer_norm(Tensor a, Tensor weight, Tensor bias, float eps) {
  Graph& g = graph_of("layer_norm", a);
  require_dtype("layer_norm", a, {DType::F32}, "input");
  for (const Tensor* t : {&weight, &bias}) {
    if (!t->valid()) continue;
    same_graph("layer_norm", a, *t);
    require_dtype("layer_norm", *t, {DType::F32}, "weight/bias");
    if (t->ne(0) != a.ne(0) || t->nelements() != t->ne(0)) {
      fail("layer_norm", shapes(a, *t) + ": weight and bias must be [ne0]");
    }
  }
  return g.add(make_node(op::LayerNorm{eps}, DType::F32, a.shape(), {a, weight, bias}));
}

Tensor softmax(Tensor a, Tensor mask, float scale) {
  Graph& g = graph_of("softmax", a);
  require_dtype("softmax", a, {DType::F32}, "input");
  if (mask.valid()) {
    same_graph("softmax", a, mask);
    require_dtype("softmax", mask, {DType::F32, DType::F16}, "mask");
    if (mask.ne(0) != a.ne(0) || mask.ne(1) < a.ne(1) || mask.ne(2) != 1 || mask.ne(3) != 1) {
      fail("softmax", shapes(a, mask) + ": mask must be [ne0, >= ne1]");
    }
  }
  return g.add(make_node(op::SoftMax{scale}, DType::F32, a.shape(), {a, mask}));
}

Tensor rope(Tensor a, Tensor positions, Tensor freq_factors, const op::Rope& p) {
  Graph& g = graph_of("rope", a);
  same_graph("rope", a, positions);
  same_graph("rope", a, freq_factors);
  require_dtype("rope", a, {DType::F32}, "input");
  require_dtype("rope", positions, {DType::I32}, "positions");
  const bool multi = p.mode == op::RopeMode::kMRope || p.mode == op::RopeMode::kVision;
  const int64_t want = a.ne(2) * (multi ? 4 : 1);
  if (positions.nelements() != want) {
    fail("rope", shapes(a, positions) + ": expected " + std::to_string(want) + " positions");
  }
  if (p.n_dims <= 0 || p.n_dims > a.ne(0) || p.n_dims % 2 != 0) {
    fail("rope", a.node().shape_string() + ": n_dims " + std::to_string(p.n_dims) +
                     " must be even and at most ne0");
  }
  if (freq_factors.valid()) {
    require_dtype("rope", freq_factors, {DType::F32}, "freq_factors");
    if (freq_factors.nelements() < p.n_dims / 2) {
      fail("rope", shapes(a, freq_factors) + ": need n_dims/2 frequency factors");
    }
  }
  return g.add(make_node(p, DType::F32, a.shape(), {a, positions, freq_factors}));
}

Tensor swiglu(Tensor gate, Tensor up) {
  Graph& g = graph_of("swiglu", gate);
  same_graph("swiglu", gate, up);
  require_dtype("swiglu", gate, {DType::F32}, "gate");
  require_dtype("swiglu", up, {DType::F32}, "up");
  if (gate.shape() != up.shape()) fail("swiglu", shapes(gate, up) + ": shapes differ");
  return g.add(make_node(op::SwiGlu{}, DType::F32, gate.shape(), {gate, up}));
}

Tensor concat(Tensor a, Tensor b, int dim) {
  Graph& g = graph_of("concat", a);
  same_graph("concat", a, b);
  if (dim < 0 || dim >= kMaxDims) fail("concat", "dim must be 0..3");
  if (a.dtype() != b.dtype() || is_quantized(a.dtype())) {
    fail("concat", shapes(a, b) + ": dtypes must match and not be quantized");
  }
  Shape ne = a.shape();
  for (int i = 0; i < kMaxDims; ++i) {
    if (i != dim && a.ne(i) != b.ne(i)) fail("concat", shapes(a, b) + ": other dims differ");
  }
  ne[dim] += b.ne(dim);
  return g.add(make_node(op::Concat{dim}, a.dtype(), ne, {a, b}));
}

Tensor set_rows(Tensor dst, Tensor rows, Tensor indices) {
  Graph& g = graph_of("set_rows", dst);
  same_graph("set_rows", dst, rows);
  same_graph("set_rows", dst, indices);
  require_dtype("set_rows", dst, {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0},
                "destination");
  require_dtype("set_rows", rows, {DType::F32}, "rows");
  require_dtype("set_rows", indices, {DType::I32, DType::I64}, "indices");
  if (rows.ne(0) != dst.ne(0) || rows.ne(2) != dst.ne(2) || rows.ne(3) != dst.ne(3) ||
      indices.ne(0) != rows.ne(1) || indices.ne(1) != rows.ne(2) || indices.ne(2) != rows.ne(3)) {
    fail("set_rows", shapes(dst, rows) + " with indices " + indices.node().shape_string() +
                         ": rows must be [ne0, n, ne2, ne3] of dst and indices [n, ne2, ne3]");
  }
  if (dst.graph()->node(dst.id()).kind() != OpKind::kLeaf && dst.node().view_src < 0) {
    fail("set_rows", "destination must be a leaf or a view of one");
  }
  Node n = make_node(op::SetRows{}, dst.dtype(), dst.shape(), {dst, rows, indices});
  n.nb = dst.node().nb;
  const int root = g.storage_root(dst.id());
  n.view_src = root;
  n.view_offset = dst.id() == root ? 0 : dst.node().view_offset;
  return g.add(std::move(n));
}

Tensor argmax(Tensor a) {
  Graph& g = graph_of("argmax", a);
  require_dtype("argmax", a, {DType::F32}, "input");
  if (a.ne(2) != 1 || a.ne(3) != 1) fail("argmax", a.node().shape_string() + ": must be 2-D");
  return g.add(make_node(op::ArgMax{}, DType::I32, {a.ne(1), 1, 1, 1}, {a}));
}

Tensor sum_rows(Tensor a) {
  Graph& g = graph_of("sum_rows", a);
  require_dtype("sum_rows", a, {DType::F32}, "input");
  return g.add(make_node(op::SumRows{}, DType::F32, {1, a.ne(1), a.ne(2), a.ne(3)}, {a}));
}

Tensor mean(Tensor a) {
  Graph& g = graph_of("mean", a);
  require_dtype("mean", a, {DType::F32}, "input");
  return g.add(make_node(op::Mean{}, DType::F32, {1, a.ne(1), a.ne(2), a.ne(3)}, {a}));
}

Tensor flash_attn(Tensor q, Tensor k, Tensor v, Tensor mask, float scale, bool causal) {
  Graph& g = graph_of("flash_attn", q);
  same_graph("flash_attn", q, k);
  same_graph("flash_attn", q, v);
  same_graph("flash_attn", q, mask);
  require_dtype("flash_attn", q, {DType::F32}, "q");
  require_dtype("flash_attn", k, {DType::F32, DType::F16}, "k");
  require_dtype("flash_attn", v, {DType::F32, DType::F16}, "v");
  if (k.ne(0) != q.ne(0) || v.ne(1) != k.ne(1) || v.ne(2) != k.ne(2) || k.ne(2) == 0 ||
      q.ne(2) % k.ne(2) != 0 || k.ne(3) != q.ne(3) || v.ne(3) != q.ne(3)) {
    fail("flash_attn", "q " + q.node().shape_string() + ", k " + k.node().shape_string() + ", v " +
                           v.node().shape_string() + " do not fit together");
  }
  if (causal && k.ne(1) < q.ne(1)) fail("flash_attn", "causal attention needs n_kv >= n_tokens");
  if (mask.valid()) {
    require_dtype("flash_attn", mask, {DType::F32, DType::F16}, "mask");
    if (mask.ne(0) != k.ne(1) || mask.ne(1) < q.ne(1)) {
      fail("flash_attn", shapes(k, mask) + ": mask must be [n_kv, >= n_tokens]");
    }
  }
  return g.add(make_node(op::FlashAttn{scale, causal}, DType::F32,
                         {v.ne(0), q.ne(2), q.ne(1), q.ne(3)}, {q, k, v, mask}));
}

namespace {
int64_t conv_out(int64_t in, int64_t k, int s, int p, int d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}
void check_conv(std::string_view name, Tensor kernel, Tensor image, int s0, int s1, int d0,
                int d1) {
  same_graph(name, kernel, image);
  require_dtype(name, image, {DType::F32}, "image");
  require_dtype(name, kernel, {DType::F32, DType::F16}, "kernel");
  if (kernel.ne(2) != image.ne(2)) fail(name, shapes(kernel, image) + ": channels differ");
  if (s0 < 1 || s1 < 1 || d0 < 1 || d1 < 1) fail(name, "stride and dilation must be >= 1");
}
}  // namespace

Tensor im2col(Tensor kernel, Tensor image, const op::Im2Col& p, DType out) {
  Graph& g = graph_of("im2col", kernel);
  check_conv("im2col", kernel, image, p.s0, p.s1, p.d0, p.d1);
  if (out != DType::F32 && out != DType::F16) fail("im2col", "output must be f32 or f16");
  const int64_t ow = conv_out(image.ne(0), kernel.ne(0), p.s0, p.p0, p.d0);
  const int64_t oh = conv_out(image.ne(1), kernel.ne(1), p.s1, p.p1, p.d1);
  if (ow <= 0 || oh <= 0) fail("im2col", shapes(kernel, image) + ": kernel larger than image");
  return g.add(make_node(p, out, {kernel.ne(0) * kernel.ne(1) * kernel.ne(2), ow, oh, image.ne(3)},
                         {kernel, image}));
}

Tensor conv2d(Tensor kernel, Tensor image, const op::Conv2D& p) {
  Graph& g = graph_of("conv2d", kernel);
  check_conv("conv2d", kernel, image, p.s0, p.s1, p.d0, p.d1);
  const int64_t ow = conv_out(image.ne(0), kernel.ne(0), p.s0, p.p0, p.d0);
  const int64_t oh = conv_out(image.ne(1), kernel.ne(1), p.s1, p.p1, p.d1);
  if (ow <= 0 || oh <= 0) fail("conv2d", shapes(kernel, image) + ": kernel larger than image");
  return g.add(make_node(p, DType::F32, {ow, oh, kernel.ne(3), image.ne(3)}, {kernel, image}));
}

std::string_view op_name(OpKind k) {
  static constexpr std::string_view kNames[] = {
      "leaf",   "view",     "cont", "cpy",        "get_rows", "mul_mat",    "add",
      "sub",    "mul",      "div",  "scale",      "rms_norm", "layer_norm", "softmax",
      "rope",   "silu",     "gelu", "gelu_quick", "swiglu",   "concat",     "set_rows",
      "argmax", "sum_rows", "mean", "flash_attn", "im2col",   "conv2d"};
  static_assert(std::size(kNames) == static_cast<size_t>(OpKind::kCount));
  return kNames[static_cast<size_t>(k)];
}

}  // namespace corral::ml
