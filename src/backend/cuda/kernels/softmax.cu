#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// One block per row: softmax(x * scale + mask[:, i1]) with the mask row shared by every ne[2],
// ne[3]. A row that is all -inf is written as zeros (as the reference and flash attention do).
// The sum is in double; max and exp in float are within the reference's rounding.
__global__ void softmax_kernel(TensorArg dst, TensorArg a, TensorArg mask, float scale) {
  int64_t i1, i2, i3;
  row_coords(blockIdx.x, dst.ne, i1, i2, i3);
  const int64_t n = dst.ne[0];
  auto value = [&](int64_t i0) {
    float v = load(a, i0, i1, i2, i3) * scale;
    if (mask.data) v += load(mask, i0, i1, 0, 0);
    return v;
  };
  float max = -INFINITY;
  for (int64_t i0 = threadIdx.x; i0 < n; i0 += blockDim.x) max = fmaxf(max, value(i0));
  max = block_max(max);
  if (max == -INFINITY) {
    for (int64_t i0 = threadIdx.x; i0 < n; i0 += blockDim.x) store(dst, i0, i1, i2, i3, 0.0f);
    return;
  }
  double sum = 0.0;
  for (int64_t i0 = threadIdx.x; i0 < n; i0 += blockDim.x) sum += exp(double{value(i0)} - max);
  sum = block_sum(sum);
  for (int64_t i0 = threadIdx.x; i0 < n; i0 += blockDim.x) {
    store(dst, i0, i1, i2, i3, static_cast<float>(exp(double{value(i0)} - max) / sum));
  }
}

}  // namespace

void softmax(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& mask,
             float scale) {
  if (dst.nelements() == 0) return;
  softmax_kernel<<<static_cast<unsigned>(dst.nrows()), kBlock, 0, l.stream>>>(dst, a, mask, scale);
}

}  // namespace corral::backend::cuda
