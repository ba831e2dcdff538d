#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// Element by element: positions below a's extent along `dim` come from a, the rest from b;
// copied as bytes (any plain dtype).
__global__ void concat_kernel(TensorArg dst, TensorArg a, TensorArg b, int dim, int elem_bytes) {
  const int64_t n = dst.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t idx[4];
    unravel(i, dst.ne, idx[0], idx[1], idx[2], idx[3]);
    char* to = at(dst, idx[0], idx[1], idx[2], idx[3]);
    const TensorArg* from = &a;
    if (idx[dim] >= a.ne[dim]) {
      idx[dim] -= a.ne[dim];
      from = &b;
    }
    const char* p = at(*from, idx[0], idx[1], idx[2], idx[3]);
    for (int k = 0; k < elem_bytes; ++k) to[k] = p[k];
  }
}

}  // namespace

void concat(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b,
            int dim) {
  if (dst.nelements() == 0) return;
  concat_kernel<<<grid_for(dst.nelements()), kBlock, 0, l.stream>>>(dst, a, b, dim,
                                                                    block_bytes(dst.dtype));
}

}  // namespace corral::backend::cuda
