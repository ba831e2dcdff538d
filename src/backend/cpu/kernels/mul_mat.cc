#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void mul_mat(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu mul_mat: not implemented");
}

}  // namespace corral::backend::cpu
namespace corral::backend::cpu {
size_t mul_mat_work_size(const ml::Graph&, const ml::Node&, int) { return 0; }
}  // namespace corral::backend::cpu
