// The op graph: nodes recorded in order (so ids are a topological order), checked when
// recorded. Free functions record ops; ml::Executor (backend.h) computes them.
#pragma once

#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "ml/tensor.h"

namespace corral::ml {

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Data owned outside the graph: weights (mmapped), inputs, caches. `data` must stay valid
  // while the graph is computed; it may be set later with Tensor::node().data.
  Tensor leaf(DType t, std::initializer_list<int64_t> ne, void* data = nullptr,
              std::string name = {});
  Tensor leaf(DType t, const Shape& ne, void* data = nullptr, std::string name = {});

  const Node& node(int id) const { return nodes_[id]; }
  Node& node(int id) { return nodes_[id]; }
  int size() const { return static_cast<int>(nodes_.size()); }
  std::span<const Node> nodes() const { return nodes_; }

  // The node that owns the memory of `id` (itself unless it is a view or in-place op).
  int storage_root(int id) const;
  // Forgets all nodes (keeps capacity, so a graph rebuilt every step does not allocate).
  void clear() { nodes_.clear(); }

  // Appends a node, checked by the caller; returns its handle. Used by the op functions.
  Tensor add(Node n);

 private:
  std::vector<Node> nodes_;
};

// ---- views (no data movement) ----
Tensor reshape(Tensor a, std::initializer_list<int64_t> ne);
Tensor view(Tensor a, const Shape& ne, const Strides& nb, size_t offset);
// Output dimension i of a becomes dimension axes[i] of the result (ggml's permute).
Tensor permute(Tensor a, int ax0, int ax1, int ax2, int ax3);
Tensor transpose(Tensor a);  // swaps dims 0 and 1
Tensor cont(Tensor a);
Tensor cast(Tensor a, DType to);

// ---- arithmetic ----
Tensor get_rows(Tensor table, Tensor ids);
Tensor mul_mat(Tensor w, Tensor x);
Tensor add(Tensor a, Tensor b);
Tensor sub(Tensor a, Tensor b);
Tensor mul(Tensor a, Tensor b);
Tensor div(Tensor a, Tensor b);
Tensor scale(Tensor a, float s, float bias = 0.0f);
Tensor rms_norm(Tensor a, float eps);
Tensor layer_norm(Tensor a, Tensor weight, Tensor bias, float eps);  // weight/bias may be {}
Tensor softmax(Tensor a, Tensor mask = {}, float scale = 1.0f);
Tensor rope(Tensor a, Tensor positions, Tensor freq_factors, const op::Rope& p);
Tensor silu(Tensor a);
Tensor gelu(Tensor a, op::GeluForm form = op::GeluForm::kTanh);
Tensor gelu_quick(Tensor a);
Tensor swiglu(Tensor gate, Tensor up);
Tensor concat(Tensor a, Tensor b, int dim);
Tensor set_rows(Tensor dst, Tensor rows, Tensor indices);
Tensor argmax(Tensor a);
Tensor sum_rows(Tensor a);
Tensor mean(Tensor a);
Tensor flash_attn(Tensor q, Tensor k, Tensor v, Tensor mask, float scale, bool causal);
Tensor im2col(Tensor kernel, Tensor image, const op::Im2Col& p, DType out = DType::F32);
Tensor conv2d(Tensor kernel, Tensor image, const op::Conv2D& p);

}  // namespace corral::ml
