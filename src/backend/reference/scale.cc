#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

void scale(const ml::Graph& g, const ml::Node& n) {
  const auto& p = n.params<ml::op::Scale>();
  unary_op(g, n, [&](float x) { return x * p.scale + p.bias; });
}

}  // namespace corral::backend::reference
