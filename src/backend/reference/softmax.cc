#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void softmax(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference softmax: not implemented");
}

}  // namespace corral::backend::reference
