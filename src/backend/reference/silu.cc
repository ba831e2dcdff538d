#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void silu(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference silu: not implemented");
}

}  // namespace corral::backend::reference
