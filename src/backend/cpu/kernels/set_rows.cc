#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"

namespace corral::backend::cpu {

// KV-cache write: row (i, j2, j3) of src1 goes to row idx[i, j2, j3] of the destination, which
// the node shares (it is a view of src0, so n.data and n.nb address the destination).
void set_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& rows = g.node(n.src[1]);
  const ml::Node& idx = g.node(n.src[2]);
  const int64_t ne0 = rows.ne[0];
  const int64_t bs = ml::block_size(n.dtype);
  const size_t bsize = ml::type_size(n.dtype);
  int64_t r0, r1;
  ctx.split(rows.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(rows.ne, r);
    const char* ip = static_cast<const char*>(idx.data) + ix.i1 * idx.nb[0] + ix.i2 * idx.nb[1] +
                     ix.i3 * idx.nb[2];
    int64_t dst_row;
    if (idx.dtype == ml::DType::I64) {
      std::memcpy(&dst_row, ip, sizeof(dst_row));
    } else {
      int32_t v;
      std::memcpy(&v, ip, sizeof(v));
      dst_row = v;
    }
    const char* x = row_ptr(rows, ix);
    char* y = row_ptr(n, dst_row, ix.i2, ix.i3);
    if (rows.nb[0] == sizeof(float)) {
      store_f32(ctx.vops(), n.dtype, reinterpret_cast<const float*>(x), y, ne0);
      continue;
    }
    for (int64_t i = 0; i < ne0; i += kChunk) {
      const int64_t m = std::min(kChunk, ne0 - i);
      float buf[kChunk];
      load_f32(ctx.vops(), ml::DType::F32, x + i * rows.nb[0], rows.nb[0], buf, m);
      store_f32(ctx.vops(), n.dtype, buf, y + (i / bs) * bsize, m);
    }
  }
}

}  // namespace corral::backend::cpu
