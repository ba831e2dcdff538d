#include <cmath>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// The tanh form is ggml's (and PyTorch's approximate="tanh"):
//   0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// the erf form is the exact GELU, 0.5 x (1 + erf(x / sqrt(2))).
void gelu(const ml::Graph& g, const ml::Node& n) {
  constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
  constexpr double kCoefA = 0.044715;
  constexpr double kSqrtHalf = 0.70710678118654752440084436210484;
  if (n.params<ml::op::Gelu>().form == ml::op::GeluForm::kTanh) {
    unary_op(g, n, [&](float xf) {
      const double x = xf;
      return static_cast<float>(0.5 * x *
                                (1.0 + std::tanh(kSqrt2OverPi * x * (1.0 + kCoefA * x * x))));
    });
  } else {
    unary_op(g, n, [&](float xf) {
      const double x = xf;
      return static_cast<float>(0.5 * x * (1.0 + std::erf(x * kSqrtHalf)));
    });
  }
}

}  // namespace corral::backend::reference
