#include "backend/cuda/kernels/elementwise.cuh"

namespace corral::backend::cuda {
namespace {

// x * sigmoid(1.702 x) (ggml's GELU_QUICK_COEF), in double as the reference.
struct GeluQuickOp {
  __device__ float operator()(float x) const {
    return static_cast<float>(x / (1.0 + exp(-1.702 * static_cast<double>(x))));
  }
};

}  // namespace

void gelu_quick(const Launch& l, const TensorArg& dst, const TensorArg& a) {
  launch_unary(l, dst, a, GeluQuickOp{});
}

}  // namespace corral::backend::cuda
