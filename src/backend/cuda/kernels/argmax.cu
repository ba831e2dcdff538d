#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// One block per row of a [ne0, rows] f32 tensor: the first index of the largest value. Each
// thread keeps its best (value, index); pairs merge keeping the larger value, or the lower
// index on equal values.
__device__ __forceinline__ void merge(float& v, int& i, float ov, int oi) {
  if (ov > v || (ov == v && oi < i)) {
    v = ov;
    i = oi;
  }
}

__global__ void argmax_kernel(TensorArg dst, TensorArg a) {
  const int64_t i1 = blockIdx.x;
  float best = -INFINITY;
  int best_i = 0x7fffffff;
  for (int64_t i0 = threadIdx.x; i0 < a.ne[0]; i0 += blockDim.x) {
    merge(best, best_i, load(a, i0, i1, 0, 0), static_cast<int>(i0));
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, best_i, o);
    merge(best, best_i, ov, oi);
  }
  __shared__ float values[32];
  __shared__ int indices[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) {
    values[warp] = best;
    indices[warp] = best_i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w) {
      merge(best, best_i, values[w], indices[w]);
    }
    // A row of -inf (or NaN) values never beats the start: index 0, as the reference.
    if (best_i == 0x7fffffff) best_i = 0;
    *reinterpret_cast<int32_t*>(at(dst, i1, 0, 0, 0)) = best_i;
  }
}

}  // namespace

void argmax(const Launch& l, const TensorArg& dst, const TensorArg& a) {
  if (a.ne[1] == 0 || a.ne[0] == 0) return;
  argmax_kernel<<<static_cast<unsigned>(a.ne[1]), kBlock, 0, l.stream>>>(dst, a);
}

}  // namespace corral::backend::cuda
