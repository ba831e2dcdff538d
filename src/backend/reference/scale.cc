#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void scale(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference scale: not implemented");
}

}  // namespace corral::backend::reference
