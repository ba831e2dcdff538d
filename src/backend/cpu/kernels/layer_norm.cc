#include <cmath>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {

// y = (x - mean) / sqrt(var + eps) [* weight] [+ bias]; the variance is taken of the centred
// row (two passes), which stays accurate when the mean is large.
void layer_norm(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  const float* weight = n.src[1] >= 0 ? static_cast<const float*>(g.node(n.src[1]).data) : nullptr;
  const float* bias = n.src[2] >= 0 ? static_cast<const float*>(g.node(n.src[2]).data) : nullptr;
  const float eps = n.params<ml::op::LayerNorm>().eps;
  const int64_t ne0 = n.ne[0];
  const vec::Ops& v = ctx.vops();
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    auto* y = reinterpret_cast<float*>(row_ptr(n, ix));
    gather_f32(row_ptr(a, ix), a.nb[0], y, ne0);
    const float mean = v.sum(y, ne0) / static_cast<float>(ne0);
    v.scale(y, y, ne0, 1.0f, -mean);
    const float var = v.sum_squares(y, ne0) / static_cast<float>(ne0);
    v.scale(y, y, ne0, 1.0f / std::sqrt(var + eps), 0.0f);
    if (weight) v.mul(y, weight, y, ne0);
    if (bias) v.add(y, bias, y, ne0);
  }
}

}  // namespace corral::backend::cpu
