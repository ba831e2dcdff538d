#include "backend/cpu/kernels/elementwise.h"

namespace corral::backend::cpu {

void scale(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const auto& p = n.params<ml::op::Scale>();
  const auto fn = ctx.vops().scale;
  unary_rows(ctx, g, n, [&](const float* x, float* y, int64_t m) { fn(x, y, m, p.scale, p.bias); });
}

}  // namespace corral::backend::cpu
