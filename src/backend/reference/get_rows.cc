#include <cassert>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// dst[:, i, j, k] = table[:, ids[i, j, k], j, k], dequantized to f32.
void get_rows(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& table = src(g, n, 0);
  const ml::Node& ids = src(g, n, 1);
  for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    const int64_t row = load_index(ids, i1, i2, i3, 0);
    assert(row >= 0 && row < table.ne[1]);
    load_row(table, row, i2, i3, reinterpret_cast<float*>(at(n, 0, i1, i2, i3)));
  });
}

}  // namespace corral::backend::reference
