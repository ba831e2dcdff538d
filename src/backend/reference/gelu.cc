#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void gelu(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference gelu: not implemented");
}

}  // namespace corral::backend::reference
