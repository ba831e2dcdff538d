#include <cmath>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// silu(gate) * up; both inputs have the node's shape, so binary_op's repetition is the identity.
void swiglu(const ml::Graph& g, const ml::Node& n) {
  binary_op(g, n, [](float gate, float up) {
    return static_cast<float>(gate / (1.0 + std::exp(-double{gate})) * up);
  });
}

}  // namespace corral::backend::reference
