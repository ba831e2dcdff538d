#include "backend/cpu/kernels/elementwise.h"

namespace corral::backend::cpu {

void gelu(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const bool erf = n.params<ml::op::Gelu>().form == ml::op::GeluForm::kErf;
  unary_rows(ctx, g, n, erf ? ctx.vops().gelu_erf : ctx.vops().gelu_tanh);
}

}  // namespace corral::backend::cpu
