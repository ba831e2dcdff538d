#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void swiglu(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference swiglu: not implemented");
}

}  // namespace corral::backend::reference
