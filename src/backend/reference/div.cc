#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void div(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference div: not implemented");
}

}  // namespace corral::backend::reference
