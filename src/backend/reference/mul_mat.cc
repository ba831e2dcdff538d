#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void mul_mat(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference mul_mat: not implemented");
}

}  // namespace corral::backend::reference
