#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void mul(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference mul: not implemented");
}

}  // namespace corral::backend::reference
