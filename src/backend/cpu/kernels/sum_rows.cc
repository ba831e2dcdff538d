#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void sum_rows(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu sum_rows: not implemented");
}

}  // namespace corral::backend::cpu
