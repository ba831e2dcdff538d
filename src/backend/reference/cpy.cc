#include <vector>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// Converts row by row through f32 (exact for f16/bf16 -> f32; f32 -> f16/bf16/q8_0/q4_0 rounds
// as the destination format does).
void cpy(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  std::vector<float> row(static_cast<size_t>(n.ne[0]));
  for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    load_row(a, i1, i2, i3, row.data());
    store_row(n, i1, i2, i3, row.data());
  });
}

}  // namespace corral::backend::reference
