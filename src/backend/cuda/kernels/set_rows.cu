#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// dst[:, idx[i1, i2, i3], i2, i3] = rows[:, i1, i2, i3], converted to dst's plain dtype; one
// thread per element of rows.
__global__ void set_rows_plain_kernel(TensorArg dst, TensorArg rows, TensorArg idx) {
  const int64_t n = rows.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t i0, i1, i2, i3;
    unravel(i, rows.ne, i0, i1, i2, i3);
    const int64_t target = load_index(idx, i1, i2, i3, 0);
    store(dst, i0, target, i2, i3, load(rows, i0, i1, i2, i3));
  }
}

// q8_0 / q4_0 destination: one thread per 32-block of a written row.
__global__ void set_rows_quant_kernel(TensorArg dst, TensorArg rows, TensorArg idx) {
  const int64_t blocks_per_row = rows.ne[0] / 32;
  const int64_t n = blocks_per_row * rows.nrows();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t blk = i % blocks_per_row;
    int64_t i1, i2, i3;
    row_coords(i / blocks_per_row, rows.ne, i1, i2, i3);
    const int64_t target = load_index(idx, i1, i2, i3, 0);
    float x[32];
    for (int j = 0; j < 32; ++j) x[j] = load(rows, blk * 32 + j, i1, i2, i3);
    char* out = at(dst, 0, target, i2, i3) + blk * block_bytes(dst.dtype);
    if (dst.dtype == DT::Q8_0) {
      quantize_block_q8_0(x, out);
    } else {
      quantize_block_q4_0(x, out);
    }
  }
}

}  // namespace

void set_rows(const Launch& l, const TensorArg& dst, const TensorArg& rows, const TensorArg& idx) {
  if (rows.nelements() == 0) return;
  if (dst.dtype == DT::Q8_0 || dst.dtype == DT::Q4_0) {
    const int64_t n = rows.ne[0] / 32 * rows.nrows();
    set_rows_quant_kernel<<<grid_for(n, 128), 128, 0, l.stream>>>(dst, rows, idx);
  } else {
    set_rows_plain_kernel<<<grid_for(rows.nelements()), kBlock, 0, l.stream>>>(dst, rows, idx);
  }
}

}  // namespace corral::backend::cuda
