#include "backend/cuda/kernels/elementwise.cuh"

namespace corral::backend::cuda {
namespace {

// silu(gate) * up in double, as the reference computes it.
struct SwiGluOp {
  __device__ float operator()(float gate, float up) const {
    return static_cast<float>(gate / (1.0 + exp(-static_cast<double>(gate))) * up);
  }
};

}  // namespace

void swiglu(const Launch& l, const TensorArg& dst, const TensorArg& gate, const TensorArg& up) {
  launch_binary(l, dst, gate, up, SwiGluOp{});
}

}  // namespace corral::backend::cuda
