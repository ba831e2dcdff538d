#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void sub(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference sub: not implemented");
}

}  // namespace corral::backend::reference
