#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// One block per row: x / sqrt(mean(x^2) + eps), the sum of squares in double as the reference.
__global__ void rms_norm_kernel(TensorArg dst, TensorArg a, float eps) {
  int64_t i1, i2, i3;
  row_coords(blockIdx.x, dst.ne, i1, i2, i3);
  double sum_sq = 0.0;
  for (int64_t i0 = threadIdx.x; i0 < dst.ne[0]; i0 += blockDim.x) {
    const double x = load(a, i0, i1, i2, i3);
    sum_sq += x * x;
  }
  sum_sq = block_sum(sum_sq);
  const double inv = 1.0 / sqrt(sum_sq / static_cast<double>(dst.ne[0]) + static_cast<double>(eps));
  for (int64_t i0 = threadIdx.x; i0 < dst.ne[0]; i0 += blockDim.x) {
    store(dst, i0, i1, i2, i3, static_cast<float>(load(a, i0, i1, i2, i3) * inv));
  }
}

}  // namespace

void rms_norm(const Launch& l, const TensorArg& dst, const TensorArg& a, float eps) {
  if (dst.nelements() == 0) return;
  rms_norm_kernel<<<static_cast<unsigned>(dst.nrows()), kBlock, 0, l.stream>>>(dst, a, eps);
}

}  // namespace corral::backend::cuda
