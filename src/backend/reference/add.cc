#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void add(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference add: not implemented");
}

}  // namespace corral::backend::reference
