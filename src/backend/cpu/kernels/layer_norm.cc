#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void layer_norm(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu layer_norm: not implemented");
}

}  // namespace corral::backend::cpu
