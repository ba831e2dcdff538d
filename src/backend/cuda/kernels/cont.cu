#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// Byte b of row (i1, i2, i3) of the contiguous destination comes from unit b / unit_bytes (an
// element, or a block of a block format) of the source row, whose units are nb[0] apart.
__global__ void cont_kernel(TensorArg dst, TensorArg a, int64_t row_bytes, int unit_bytes) {
  const int64_t n = row_bytes * dst.nrows();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t b = i % row_bytes;
    int64_t i1, i2, i3;
    row_coords(i / row_bytes, dst.ne, i1, i2, i3);
    const char* from = at(a, 0, i1, i2, i3) + (b / unit_bytes) * a.nb[0] + b % unit_bytes;
    *(at(dst, 0, i1, i2, i3) + b) = *from;
  }
}

}  // namespace

void cont(const Launch& l, const TensorArg& dst, const TensorArg& a) {
  const int unit = block_bytes(a.dtype);
  const int64_t row_bytes = a.ne[0] / block_elems(a.dtype) * unit;
  const int64_t n = row_bytes * dst.nrows();
  if (n == 0) return;
  cont_kernel<<<grid_for(n), kBlock, 0, l.stream>>>(dst, a, row_bytes, unit);
}

}  // namespace corral::backend::cuda
