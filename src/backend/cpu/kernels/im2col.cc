#include "backend/cpu/kernels/im2col.h"

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "ml/fp16.h"

namespace corral::backend::cpu {

// Output rows are output pixels (ox, oy, b).
void im2col(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& kernel = g.node(n.src[0]);
  const ml::Node& image = g.node(n.src[1]);
  const auto& p = n.params<ml::op::Im2Col>();
  const ConvGeometry geo{kernel.ne[0], kernel.ne[1], kernel.ne[2], p.s0, p.s1,
                         p.p0,         p.p1,         p.d0,         p.d1};
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    char* y = row_ptr(n, ix);
    if (n.dtype == ml::DType::F32) {
      auto* f = reinterpret_cast<float*>(y);
      im2col_column(image, geo, ix.i1, ix.i2, ix.i3, [f](int64_t i, float v) { f[i] = v; });
    } else {
      auto* h = reinterpret_cast<uint16_t*>(y);
      im2col_column(image, geo, ix.i1, ix.i2, ix.i3,
                    [h](int64_t i, float v) { h[i] = ml::fp32_to_fp16(v); });
    }
  }
}

}  // namespace corral::backend::cpu
