#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void rms_norm(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference rms_norm: not implemented");
}

}  // namespace corral::backend::reference
