#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void cpy(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference cpy: not implemented");
}

}  // namespace corral::backend::reference
