#include <cstring>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// Copies unit by unit (an element, or a block for block formats) so any strides work.
void cont(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& a = src(g, n, 0);
  const int64_t units = a.ne[0] / ml::block_size(a.dtype);
  const size_t unit = ml::type_size(a.dtype);
  for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    const char* from = at(a, 0, i1, i2, i3);
    char* to = at(n, 0, i1, i2, i3);
    for (int64_t u = 0; u < units; ++u) std::memcpy(to + u * unit, from + u * a.nb[0], unit);
  });
}

}  // namespace corral::backend::reference
