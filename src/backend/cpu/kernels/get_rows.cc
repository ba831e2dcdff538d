#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void get_rows(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu get_rows: not implemented");
}

}  // namespace corral::backend::cpu
