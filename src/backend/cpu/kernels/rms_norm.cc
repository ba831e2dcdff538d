#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void rms_norm(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu rms_norm: not implemented");
}

}  // namespace corral::backend::cpu
