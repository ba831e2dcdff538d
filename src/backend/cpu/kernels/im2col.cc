#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void im2col(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu im2col: not implemented");
}

}  // namespace corral::backend::cpu
