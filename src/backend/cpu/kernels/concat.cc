#include <cstring>

#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"

namespace corral::backend::cpu {

// Each output element comes from src0 below src0's extent along dim, else from src1 shifted
// back by it. Along dims 1..3 whole rows come from one source; along dim 0 a row is two
// pieces.
void concat(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = g.node(n.src[0]);
  const ml::Node& b = g.node(n.src[1]);
  const int dim = n.params<ml::op::Concat>().dim;
  const size_t esize = ml::type_size(n.dtype);
  auto copy = [esize](const ml::Node& s, const char* x, char* y, int64_t count) {
    if (s.nb[0] == esize) {
      std::memcpy(y, x, count * esize);
      return;
    }
    for (int64_t i = 0; i < count; ++i) std::memcpy(y + i * esize, x + i * s.nb[0], esize);
  };
  int64_t r0, r1;
  ctx.split(n.nrows(), r0, r1);
  for (int64_t r = r0; r < r1; ++r) {
    const RowIndex ix = row_index(n.ne, r);
    char* y = row_ptr(n, ix);
    if (dim == 0) {
      copy(a, row_ptr(a, ix), y, a.ne[0]);
      copy(b, row_ptr(b, ix), y + a.ne[0] * esize, b.ne[0]);
      continue;
    }
    int64_t i[4] = {0, ix.i1, ix.i2, ix.i3};
    const ml::Node* s = &a;
    if (i[dim] >= a.ne[dim]) {
      i[dim] -= a.ne[dim];
      s = &b;
    }
    copy(*s, row_ptr(*s, i[1], i[2], i[3]), y, n.ne[0]);
  }
}

}  // namespace corral::backend::cpu
