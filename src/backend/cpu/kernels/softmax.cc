#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {

// y = softmax(x * scale + mask) over ne[0]: the logits are built in y, then exponentiated
// relative to their maximum (so nothing overflows) and normalised. Mask row i1 serves every
// (i2, i3).
void softmax(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  const ml::Node* mask = n.src[1] >= 0 ? &g.node(n.src[1]) : nullptr;
  const float scale = n.params<ml::op::SoftMax>().scale;
  const int64_t ne0 = n.ne[0];
  const vec::Ops& v = ctx.vops();
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    auto* y = reinterpret_cast<float*>(row_ptr(n, ix));
    const char* x = row_ptr(a, ix);
    if (a.nb[0] == sizeof(float)) {
      v.scale(reinterpret_cast<const float*>(x), y, ne0, scale, 0.0f);
    } else {
      gather_f32(x, a.nb[0], y, ne0);
      v.scale(y, y, ne0, scale, 0.0f);
    }
    if (mask) {
      const char* m = row_ptr(*mask, ix.i1, 0, 0);
      if (mask->dtype == ml::DType::F32 && mask->nb[0] == sizeof(float)) {
        v.add(y, reinterpret_cast<const float*>(m), y, ne0);
      } else {
        for (int64_t i = 0; i < ne0; i += kChunk) {
          const int64_t len = std::min(kChunk, ne0 - i);
          float buf[kChunk];
          load_f32(ctx.vops(), mask->dtype, m + i * mask->nb[0], mask->nb[0], buf, len);
          v.add(y + i, buf, y + i, len);
        }
      }
    }
    const float mx = v.max(y, ne0);
    if (mx == -INFINITY) {
      // Every position masked: no distribution exists; zeros keep NaNs out of later ops.
      std::fill(y, y + ne0, 0.0f);
      continue;
    }
    const float sum = v.exp_sum(y, y, ne0, mx);
    v.scale(y, y, ne0, 1.0f / sum, 0.0f);
  }
}

}  // namespace corral::backend::cpu
