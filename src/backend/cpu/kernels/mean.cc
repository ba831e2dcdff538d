#include "backend/cpu/kernels/reduce.h"

namespace corral::backend::cpu {

void mean(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  reduce_rows(ctx, g, n, true);
}

}  // namespace corral::backend::cpu
