#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void conv2d(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference conv2d: not implemented");
}

}  // namespace corral::backend::reference
