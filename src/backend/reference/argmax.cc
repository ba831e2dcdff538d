#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void argmax(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference argmax: not implemented");
}

}  // namespace corral::backend::reference
