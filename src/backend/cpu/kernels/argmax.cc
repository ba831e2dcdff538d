#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void argmax(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu argmax: not implemented");
}

}  // namespace corral::backend::cpu
