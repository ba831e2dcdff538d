#include <cstring>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// Element by element: positions below a's extent along `dim` come from a, the rest from b.
void concat(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  const ml::Node& b = src(g, n, 1);
  const int dim = n.params<ml::op::Concat>().dim;
  const size_t size = ml::type_size(n.dtype);
  for_each_index(n.ne, [&](int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
    int64_t idx[4] = {i0, i1, i2, i3};
    const ml::Node* from = &a;
    if (idx[dim] >= a.ne[dim]) {
      idx[dim] -= a.ne[dim];
      from = &b;
    }
    std::memcpy(at(n, i0, i1, i2, i3), at(*from, idx[0], idx[1], idx[2], idx[3]), size);
  });
}

}  // namespace corral::backend::reference
