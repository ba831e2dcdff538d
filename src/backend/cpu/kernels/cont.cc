#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"

namespace corral::backend::cpu {

// Same dtype, new contiguous layout. Quantized tensors keep whole block rows (the block axis
// cannot be permuted), so only plain dtypes ever take the element-by-element path.
void cont(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  const size_t esize = ml::type_size(n.dtype);
  const size_t row_bytes = ml::row_size(n.dtype, n.ne[0]);
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    const char* x = row_ptr(a, ix);
    char* y = row_ptr(n, ix);
    if (a.nb[0] == esize) {
      std::memcpy(y, x, row_bytes);
      continue;
    }
    for (int64_t i = 0; i < n.ne[0]; ++i) std::memcpy(y + i * esize, x + i * a.nb[0], esize);
  }
}

}  // namespace corral::backend::cpu
