#include <cassert>
#include <vector>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// dst[:, idx[i, j, k], j, k] = rows[:, i, j, k], converted to dst's dtype. The node is a view of
// dst (same data and strides), so writing through it writes the destination in place.
void set_rows(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& rows = src(g, n, 1);
  const ml::Node& idx = src(g, n, 2);
  std::vector<float> row(static_cast<size_t>(n.ne[0]));
  for_each_row(rows.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    const int64_t target = load_index(idx, i1, i2, i3, 0);
    assert(target >= 0 && target < n.ne[1]);
    load_row(rows, i1, i2, i3, row.data());
    store_row(n, target, i2, i3, row.data());
  });
}

}  // namespace corral::backend::reference
