#include <cstring>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// The first index of the largest value in each row.
void argmax(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  for (int64_t i1 = 0; i1 < a.ne[1]; ++i1) {
    int32_t best = 0;
    float best_v = load(a, 0, i1, 0, 0);
    for (int64_t i0 = 1; i0 < a.ne[0]; ++i0) {
      const float v = load(a, i0, i1, 0, 0);
      if (v > best_v) {
        best_v = v;
        best = static_cast<int32_t>(i0);
      }
    }
    std::memcpy(at(n, i1, 0, 0, 0), &best, sizeof best);
  }
}

}  // namespace corral::backend::reference
