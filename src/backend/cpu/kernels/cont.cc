#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void cont(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu cont: not implemented");
}

}  // namespace corral::backend::cpu
