#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"

namespace corral::backend::cpu {

// Rows convert through a stack chunk of f32; kChunk is a whole number of 32-element blocks, so
// each chunk quantizes into its own blocks.
void cpy(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  if (a.dtype == n.dtype) {
    cont(ctx, g, n);
    return;
  }
  static_assert(kChunk % 32 == 0);
  const int64_t ne0 = n.ne[0];
  const int64_t bs = ml::block_size(n.dtype);
  const size_t bsize = ml::type_size(n.dtype);
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    const char* x = row_ptr(a, ix);
    char* y = row_ptr(n, ix);
    if (a.dtype == ml::DType::F32 && a.nb[0] == sizeof(float)) {
      store_f32(ctx.vops(), n.dtype, reinterpret_cast<const float*>(x), y, ne0);
      continue;
    }
    for (int64_t i = 0; i < ne0; i += kChunk) {
      const int64_t m = std::min(kChunk, ne0 - i);
      float buf[kChunk];
      load_f32(ctx.vops(), a.dtype, x + i * a.nb[0], a.nb[0], buf, m);
      store_f32(ctx.vops(), n.dtype, buf, y + (i / bs) * bsize, m);
    }
  }
}

}  // namespace corral::backend::cpu
