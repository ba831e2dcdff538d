#include "ml/tensor.h"

#include "ml/graph.h"

namespace corral::ml {

Strides contiguous_strides(DType t, const Shape& ne) {
  Strides nb{};
  nb[0] = type_size(t);
  nb[1] = row_size(t, ne[0]);
  nb[2] = nb[1] * static_cast<size_t>(ne[1]);
  nb[3] = nb[2] * static_cast<size_t>(ne[2]);
  return nb;
}

size_t Node::nbytes() const {
  if (nelements() == 0) return 0;
  size_t bytes = row_size(dtype, ne[0]);
  for (int i = 1; i < kMaxDims; ++i) bytes += static_cast<size_t>(ne[i] - 1) * nb[i];
  return bytes;
}

bool Node::is_contiguous() const { return nb == contiguous_strides(dtype, ne); }

bool Node::rows_contiguous() const { return nb[0] == type_size(dtype); }

std::string Node::shape_string() const {
  std::string s = "[";
  for (int i = 0; i < kMaxDims; ++i) {
    if (i) s += ", ";
    s += std::to_string(ne[i]);
  }
  s += "] ";
  s += dtype_name(dtype);
  return s;
}

const Node& Tensor::node() const { return graph_->node(id_); }
Node& Tensor::node() { return graph_->node(id_); }

Tensor& Tensor::set_name(std::string name) {
  node().name = std::move(name);
  return *this;
}

}  // namespace corral::ml
