#include "backend/cpu/kernels/reduce.h"

namespace corral::backend::cpu {

void sum_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  reduce_rows(ctx, g, n, false);
}

}  // namespace corral::backend::cpu
