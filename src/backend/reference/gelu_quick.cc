#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void gelu_quick(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference gelu_quick: not implemented");
}

}  // namespace corral::backend::reference
