#include <cmath>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

void silu(const ml::Graph& g, const ml::Node& n) {
  unary_op(g, n, [](float x) { return static_cast<float>(x / (1.0 + std::exp(-double{x}))); });
}

}  // namespace corral::backend::reference
