#include <cmath>
#include <limits>
#include <vector>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// Row-wise softmax(x * scale + mask). The mask row is the row's index in dim 1 (the query), the
// same for every ne[2]/ne[3]. -inf mask entries get probability 0; a row whose entries are all
// -inf has no defined softmax and is written as zeros (as flash attention does).
void softmax(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  const ml::Node* mask = has_src(n, 1) ? &src(g, n, 1) : nullptr;
  const float scale = n.params<ml::op::SoftMax>().scale;
  std::vector<double> w(static_cast<size_t>(n.ne[0]));
  for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    double max = -std::numeric_limits<double>::infinity();
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
      double v = double{load(a, i0, i1, i2, i3)} * scale;
      if (mask) v += load(*mask, i0, i1, 0, 0);
      w[i0] = v;
      if (v > max) max = v;
    }
    if (max == -std::numeric_limits<double>::infinity()) {
      for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) store(n, i0, i1, i2, i3, 0.0f);
      return;
    }
    double sum = 0.0;
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
      w[i0] = std::exp(w[i0] - max);
      sum += w[i0];
    }
    for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
      store(n, i0, i1, i2, i3, static_cast<float>(w[i0] / sum));
    }
  });
}

}  // namespace corral::backend::reference
