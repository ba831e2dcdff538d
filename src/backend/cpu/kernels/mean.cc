#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

// In sum_rows.cc: the shared row reduction.
void reduce_rows(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n, bool mean);

void mean(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  reduce_rows(ctx, g, n, true);
}

}  // namespace corral::backend::cpu
