#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// One block per row: the mean over ne[0], summed in double.
__global__ void mean_kernel(TensorArg dst, TensorArg a) {
  int64_t i1, i2, i3;
  row_coords(blockIdx.x, dst.ne, i1, i2, i3);
  double sum = 0.0;
  for (int64_t i0 = threadIdx.x; i0 < a.ne[0]; i0 += blockDim.x) sum += load(a, i0, i1, i2, i3);
  sum = block_sum(sum);
  if (threadIdx.x == 0)
    store(dst, 0, i1, i2, i3, static_cast<float>(sum / static_cast<double>(a.ne[0])));
}

}  // namespace

void mean(const Launch& l, const TensorArg& dst, const TensorArg& a) {
  if (dst.nelements() == 0) return;
  mean_kernel<<<static_cast<unsigned>(dst.nrows()), kBlock, 0, l.stream>>>(dst, a);
}

}  // namespace corral::backend::cuda
