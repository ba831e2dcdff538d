#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// One block per row: the sum over ne[0], in double.
__global__ void sum_rows_kernel(TensorArg dst, TensorArg a) {
  int64_t i1, i2, i3;
  row_coords(blockIdx.x, dst.ne, i1, i2, i3);
  double sum = 0.0;
  for (int64_t i0 = threadIdx.x; i0 < a.ne[0]; i0 += blockDim.x) sum += load(a, i0, i1, i2, i3);
  sum = block_sum(sum);
  if (threadIdx.x == 0) store(dst, 0, i1, i2, i3, static_cast<float>(sum));
}

}  // namespace

void sum_rows(const Launch& l, const TensorArg& dst, const TensorArg& a) {
  if (dst.nelements() == 0) return;
  sum_rows_kernel<<<static_cast<unsigned>(dst.nrows()), kBlock, 0, l.stream>>>(dst, a);
}

}  // namespace corral::backend::cuda
