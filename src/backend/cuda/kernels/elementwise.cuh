// Element-wise kernels over any strides: dst = f(a) and dst = f(a, b) with b repeated along
// each dimension to a's shape (the reference's unary_op / binary_op).
#pragma once

#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {

template <class F>
__global__ void unary_kernel(TensorArg dst, TensorArg a, F f) {
  const int64_t n = dst.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t i0, i1, i2, i3;
    unravel(i, dst.ne, i0, i1, i2, i3);
    store(dst, i0, i1, i2, i3, f(load(a, i0, i1, i2, i3)));
  }
}

template <class F>
__global__ void binary_kernel(TensorArg dst, TensorArg a, TensorArg b, F f) {
  const int64_t n = dst.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t i0, i1, i2, i3;
    unravel(i, dst.ne, i0, i1, i2, i3);
    const float x = load(a, i0, i1, i2, i3);
    const float y = load(b, i0 % b.ne[0], i1 % b.ne[1], i2 % b.ne[2], i3 % b.ne[3]);
    store(dst, i0, i1, i2, i3, f(x, y));
  }
}

template <class F>
void launch_unary(const Launch& l, const TensorArg& dst, const TensorArg& a, F f) {
  const int64_t n = dst.nelements();
  if (n == 0) return;
  unary_kernel<<<grid_for(n), kBlock, 0, l.stream>>>(dst, a, f);
}

template <class F>
void launch_binary(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b,
                   F f) {
  const int64_t n = dst.nelements();
  if (n == 0) return;
  binary_kernel<<<grid_for(n), kBlock, 0, l.stream>>>(dst, a, b, f);
}

}  // namespace corral::backend::cuda
