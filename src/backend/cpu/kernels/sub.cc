#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void sub(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu sub: not implemented");
}

}  // namespace corral::backend::cpu
