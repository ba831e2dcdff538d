#include <cmath>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

void rms_norm(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  const double eps = n.params<ml::op::RmsNorm>().eps;
  for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    double sum_sq = 0.0;
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
      const double x = load(a, i0, i1, i2, i3);
      sum_sq += x * x;
    }
    const double inv = 1.0 / std::sqrt(sum_sq / static_cast<double>(n.ne[0]) + eps);
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
      store(n, i0, i1, i2, i3, static_cast<float>(load(a, i0, i1, i2, i3) * inv));
    }
  });
}

}  // namespace corral::backend::reference
