#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

void sum_rows(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < a.ne[0]; ++i0) sum += load(a, i0, i1, i2, i3);
    store(n, 0, i1, i2, i3, static_cast<float>(sum));
  });
}

}  // namespace corral::backend::reference
