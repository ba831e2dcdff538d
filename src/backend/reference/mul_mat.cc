#include <vector>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// dst[i, j, b2, b3] = sum_k w[k, i, b2 / r2, b3 / r3] * x[k, j, b2, b3] with r2 = B2 / b2 and
// r3 = B3 / b3: consecutive activation heads share one weight head, as grouped-query attention
// lays them out (ggml's broadcast rule). Each weight row is dequantized once and dotted in double.
void mul_mat(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& w = src(g, n, 0);
  const ml::Node& x = src(g, n, 1);
  const int64_t k = w.ne[0];
  const int64_t r2 = x.ne[2] / w.ne[2];
  const int64_t r3 = x.ne[3] / w.ne[3];
  std::vector<float> wrow(static_cast<size_t>(k));
  for_each_row(w.ne, [&](int64_t i, int64_t w2, int64_t w3) {
    load_row(w, i, w2, w3, wrow.data());
    for (int64_t b3 = w3 * r3; b3 < (w3 + 1) * r3; ++b3) {
      for (int64_t b2 = w2 * r2; b2 < (w2 + 1) * r2; ++b2) {
        for (int64_t j = 0; j < x.ne[1]; ++j) {
          const auto* xr = reinterpret_cast<const float*>(at(x, 0, j, b2, b3));
          double acc = 0.0;
          for (int64_t e = 0; e < k; ++e) acc += double{wrow[e]} * double{xr[e]};
          store(n, i, j, b2, b3, static_cast<float>(acc));
        }
      }
    }
  });
}

}  // namespace corral::backend::reference
