#include "backend/cuda/kernels/elementwise.cuh"

namespace corral::backend::cuda {
namespace {

struct SubOp {
  __device__ float operator()(float x, float y) const { return x - y; }
};

}  // namespace

void sub(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b) {
  launch_binary(l, dst, a, b, SubOp{});
}

}  // namespace corral::backend::cuda
