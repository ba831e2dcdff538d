#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void im2col(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference im2col: not implemented");
}

}  // namespace corral::backend::reference
