#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// Plain destination: element by element through f32 (exact for f16/bf16 -> f32, round to
// nearest even the other way), from any source dtype.
__global__ void cpy_plain_kernel(TensorArg dst, TensorArg a) {
  const int64_t n = dst.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t i0, i1, i2, i3;
    unravel(i, dst.ne, i0, i1, i2, i3);
    store(dst, i0, i1, i2, i3, row_elem_any(at(a, 0, i1, i2, i3), a.dtype, a.nb[0], i0));
  }
}

// q8_0 / q4_0 destination: one thread per 32-block, quantized as ml/quant does.
__global__ void cpy_quant_kernel(TensorArg dst, TensorArg a) {
  const int64_t blocks_per_row = dst.ne[0] / 32;
  const int64_t n = blocks_per_row * dst.nrows();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t blk = i % blocks_per_row;
    int64_t i1, i2, i3;
    row_coords(i / blocks_per_row, dst.ne, i1, i2, i3);
    float x[32];
    const char* src_row = at(a, 0, i1, i2, i3);
    for (int j = 0; j < 32; ++j) x[j] = row_elem_any(src_row, a.dtype, a.nb[0], blk * 32 + j);
    char* out = at(dst, 0, i1, i2, i3) + blk * block_bytes(dst.dtype);
    if (dst.dtype == DT::Q8_0) {
      quantize_block_q8_0(x, out);
    } else {
      quantize_block_q4_0(x, out);
    }
  }
}

}  // namespace

void cpy(const Launch& l, const TensorArg& dst, const TensorArg& a) {
  if (dst.nelements() == 0) return;
  if (dst.dtype == DT::Q8_0 || dst.dtype == DT::Q4_0) {
    const int64_t n = dst.ne[0] / 32 * dst.nrows();
    cpy_quant_kernel<<<grid_for(n, 128), 128, 0, l.stream>>>(dst, a);
  } else {
    cpy_plain_kernel<<<grid_for(dst.nelements()), kBlock, 0, l.stream>>>(dst, a);
  }
}

}  // namespace corral::backend::cuda
