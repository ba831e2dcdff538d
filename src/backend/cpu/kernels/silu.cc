#include "backend/cpu/kernels/elementwise.h"

namespace corral::backend::cpu {

void silu(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  unary_rows(ctx, g, n, ctx.vops().silu);
}

}  // namespace corral::backend::cpu
