// Nodes of the op graph and the Tensor handle that model code holds.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "ml/dtype.h"
#include "ml/ops.h"

namespace corral::ml {

inline constexpr int kMaxDims = 4;
inline constexpr int kMaxSrc = 4;

using Shape = std::array<int64_t, kMaxDims>;   // ne: elements per dimension, ne[0] fastest
using Strides = std::array<size_t, kMaxDims>;  // nb: bytes between neighbours per dimension

struct Node {
  OpParams op;
  DType dtype = DType::F32;
  Shape ne{1, 1, 1, 1};
  Strides nb{};
  std::array<int, kMaxSrc> src{-1, -1, -1, -1};
  // Views (and in-place ops) share the memory of view_src, the node that owns it, at
  // view_offset bytes.
  int view_src = -1;
  size_t view_offset = 0;
  // Host address of element 0, set for leaves by their owner and for every other node by the
  // executor before the node runs.
  void* data = nullptr;
  std::string name;

  OpKind kind() const { return static_cast<OpKind>(op.index()); }
  template <class P>
  const P& params() const {
    return std::get<P>(op);
  }
  int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t nrows() const { return ne[1] * ne[2] * ne[3]; }
  // Bytes spanned by the tensor with its strides.
  size_t nbytes() const;
  bool is_contiguous() const;
  // Rows are contiguous (nb[0] == element size) even if the rows themselves are not packed.
  bool rows_contiguous() const;
  std::string shape_string() const;  // "[64, 32, 1, 1] f32"
};

// Contiguous strides for a shape of a dtype.
Strides contiguous_strides(DType t, const Shape& ne);

class Graph;

// A cheap handle to a node of a graph. Ops record nodes; nothing runs until the graph is
// computed.
class Tensor {
 public:
  Tensor() = default;
  Tensor(Graph* graph, int id) : graph_(graph), id_(id) {}

  Graph* graph() const { return graph_; }
  int id() const { return id_; }
  bool valid() const { return graph_ != nullptr; }
  const Node& node() const;
  Node& node();

  DType dtype() const { return node().dtype; }
  int64_t ne(int i) const { return node().ne[i]; }
  size_t nb(int i) const { return node().nb[i]; }
  const Shape& shape() const { return node().ne; }
  int64_t nelements() const { return node().nelements(); }
  void* data() const { return node().data; }
  Tensor& set_name(std::string name);

 private:
  Graph* graph_ = nullptr;
  int id_ = -1;
};

}  // namespace corral::ml
