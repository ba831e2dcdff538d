#include <cmath>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// Biased variance (divided by ne0), as PyTorch's LayerNorm and ggml_norm compute it.
void layer_norm(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  const ml::Node* weight = has_src(n, 1) ? &src(g, n, 1) : nullptr;
  const ml::Node* bias = has_src(n, 2) ? &src(g, n, 2) : nullptr;
  const double eps = n.params<ml::op::LayerNorm>().eps;
  const double count = static_cast<double>(n.ne[0]);
  for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) sum += load(a, i0, i1, i2, i3);
    const double mean = sum / count;
    double sum_sq = 0.0;
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
      const double d = load(a, i0, i1, i2, i3) - mean;
      sum_sq += d * d;
    }
    const double inv = 1.0 / std::sqrt(sum_sq / count + eps);
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
      double y = (load(a, i0, i1, i2, i3) - mean) * inv;
      if (weight) y *= load(*weight, i0, 0, 0, 0);
      if (bias) y += load(*bias, i0, 0, 0, 0);
      store(n, i0, i1, i2, i3, static_cast<float>(y));
    }
  });
}

}  // namespace corral::backend::reference
