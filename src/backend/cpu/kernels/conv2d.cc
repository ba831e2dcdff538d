#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void conv2d(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu conv2d: not implemented");
}

}  // namespace corral::backend::cpu
namespace corral::backend::cpu {
size_t conv2d_work_size(const ml::Graph&, const ml::Node&, int) { return 0; }
}  // namespace corral::backend::cpu
