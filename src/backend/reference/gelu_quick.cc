#include <cmath>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// x * sigmoid(1.702 x), the "quick" GELU of CLIP-style vision towers (ggml's GELU_QUICK_COEF).
void gelu_quick(const ml::Graph& g, const ml::Node& n) {
  constexpr double kCoef = 1.702;
  unary_op(g, n,
           [](float x) { return static_cast<float>(x / (1.0 + std::exp(-kCoef * double{x}))); });
}

}  // namespace corral::backend::reference
