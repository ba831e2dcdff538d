#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void get_rows(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference get_rows: not implemented");
}

}  // namespace corral::backend::reference
