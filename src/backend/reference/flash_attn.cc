#include <stdexcept>

#include "backend/reference/reference.h"

namespace corral::backend::reference {

void flash_attn(const ml::Graph&, const ml::Node&) {
  throw std::logic_error("reference flash_attn: not implemented");
}

}  // namespace corral::backend::reference
