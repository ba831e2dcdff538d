#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {

// y = x / sqrt(mean(x^2) + eps), one row at a time (sum of squares then one scale pass).
void rms_norm(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  const float eps = n.params<ml::op::RmsNorm>().eps;
  const int64_t ne0 = n.ne[0];
  const vec::Ops& v = ctx.vops();
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    const char* x = row_ptr(a, ix);
    auto* y = reinterpret_cast<float*>(row_ptr(n, ix));
    // Strided rows are first packed into y, then normalised in place.
    const float* xf = reinterpret_cast<const float*>(x);
    if (a.nb[0] != sizeof(float)) {
      gather_f32(x, a.nb[0], y, ne0);
      xf = y;
    }
    const float ms = v.sum_squares(xf, ne0) / static_cast<float>(ne0);
    v.scale(xf, y, ne0, 1.0f / std::sqrt(ms + eps), 0.0f);
  }
}

}  // namespace corral::backend::cpu
