#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void cont(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference cont: not implemented");
}

}  // namespace corral::backend::reference
