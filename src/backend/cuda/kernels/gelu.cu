#include "backend/cuda/kernels/elementwise.cuh"

namespace corral::backend::cuda {
namespace {

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), ggml's and PyTorch's approximate="tanh".
struct GeluTanhOp {
  __device__ float operator()(float xf) const {
    const double x = xf;
    constexpr double kSqrt2OverPi = 0.79788456080286535587989211986876;
    return static_cast<float>(0.5 * x * (1.0 + tanh(kSqrt2OverPi * x * (1.0 + 0.044715 * x * x))));
  }
};

// The exact GELU, 0.5 x (1 + erf(x / sqrt(2))).
struct GeluErfOp {
  __device__ float operator()(float xf) const {
    const double x = xf;
    constexpr double kSqrtHalf = 0.70710678118654752440084436210484;
    return static_cast<float>(0.5 * x * (1.0 + erf(x * kSqrtHalf)));
  }
};

}  // namespace

void gelu(const Launch& l, const TensorArg& dst, const TensorArg& a, bool erf_form) {
  if (erf_form) {
    launch_unary(l, dst, a, GeluErfOp{});
  } else {
    launch_unary(l, dst, a, GeluTanhOp{});
  }
}

}  // namespace corral::backend::cuda
