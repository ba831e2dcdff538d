#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void concat(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference concat: not implemented");
}

}  // namespace corral::backend::reference
