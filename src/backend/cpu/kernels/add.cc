#include "backend/cpu/kernels/elementwise.h"

namespace corral::backend::cpu {

void add(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  binary_rows(ctx, g, n, ctx.vops().add);
}

}  // namespace corral::backend::cpu
