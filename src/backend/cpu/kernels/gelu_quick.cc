#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void gelu_quick(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu gelu_quick: not implemented");
}

}  // namespace corral::backend::cpu
