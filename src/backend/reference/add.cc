#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

void add(const ml::Graph& g, const ml::Node& n) {
  binary_op(g, n, [](float x, float y) { return x + y; });
}

}  // namespace corral::backend::reference
