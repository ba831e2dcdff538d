#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void mean(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference mean: not implemented");
}

}  // namespace corral::backend::reference
