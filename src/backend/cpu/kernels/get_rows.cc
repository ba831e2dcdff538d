#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "ml/quant/quant.h"

namespace corral::backend::cpu {

// Embedding lookup: output row (i, j2, j3) is table row ids[i, j2, j3] of batch (j2, j3),
// widened to f32. Block formats go through the reference dequantizer (a lookup touches a few
// rows, so its speed does not matter).
void get_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& table = g.node(n.src[0]);
  const ml::Node& ids = g.node(n.src[1]);
  const int64_t ne0 = n.ne[0];
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    int32_t id;
    std::memcpy(&id,
                static_cast<const char*>(ids.data) + ix.i1 * ids.nb[0] + ix.i2 * ids.nb[1] +
                    ix.i3 * ids.nb[2],
                sizeof(id));
    const char* x = row_ptr(table, id, ix.i2, ix.i3);
    auto* y = reinterpret_cast<float*>(row_ptr(n, ix));
    switch (table.dtype) {
      case ml::DType::F32:
      case ml::DType::F16:
      case ml::DType::BF16:
        load_f32(ctx.vops(), table.dtype, x, table.nb[0], y, ne0);
        break;
      default:
        ml::quant::dequantize_row(table.dtype, x, y, ne0);
        break;
    }
  }
}

}  // namespace corral::backend::cpu
