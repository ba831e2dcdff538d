#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void rope(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference rope: not implemented");
}

}  // namespace corral::backend::reference
