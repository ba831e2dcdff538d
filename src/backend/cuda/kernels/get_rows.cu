#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

// dst[i0, i1, i2, i3] = table[i0, ids[i1, i2, i3], i2, i3] as f32, dequantized element by
// element (one thread per output element).
template <DT T>
__global__ void get_rows_kernel(TensorArg dst, TensorArg table, TensorArg ids) {
  const int64_t n = dst.nelements();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t i0, i1, i2, i3;
    unravel(i, dst.ne, i0, i1, i2, i3);
    const int64_t row = load_index(ids, i1, i2, i3, 0);
    const float v = row_elem<T>(at(table, 0, row, i2, i3), table.nb[0], i0);
    *reinterpret_cast<float*>(at(dst, i0, i1, i2, i3)) = v;
  }
}

}  // namespace

void get_rows(const Launch& l, const TensorArg& dst, const TensorArg& table, const TensorArg& ids) {
  const int64_t n = dst.nelements();
  if (n == 0) return;
  dispatch_dtype(table.dtype, [&]<DT T>() {
    get_rows_kernel<T><<<grid_for(n), kBlock, 0, l.stream>>>(dst, table, ids);
  });
}

}  // namespace corral::backend::cuda
