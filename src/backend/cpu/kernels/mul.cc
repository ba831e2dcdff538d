#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void mul(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu mul: not implemented");
}

}  // namespace corral::backend::cpu
