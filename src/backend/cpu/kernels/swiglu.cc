#include "backend/cpu/kernels/elementwise.h"

namespace corral::backend::cpu {

// Same shapes (checked when recorded), so the broadcasting loop runs with src1's row as long as
// src0's.
void swiglu(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  binary_rows(ctx, g, n, ctx.vops().swiglu);
}

}  // namespace corral::backend::cpu
