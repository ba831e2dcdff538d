#include "backend/cpu/kernels/elementwise.h"

namespace corral::backend::cpu {

void gelu_quick(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  unary_rows(ctx, g, n, ctx.vops().gelu_quick);
}

}  // namespace corral::backend::cpu
