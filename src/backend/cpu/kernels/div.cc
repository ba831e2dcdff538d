#include "backend/cpu/kernels/elementwise.h"

namespace corral::backend::cpu {

void div(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  binary_rows(ctx, g, n, ctx.vops().div);
}

}  // namespace corral::backend::cpu
