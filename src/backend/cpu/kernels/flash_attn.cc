#include <stdexcept>

#include "backend/cpu/kernels/kernels.h"

namespace corral::backend::cpu {

void flash_attn(const KernelContext&, const ml::Graph&, const ml::Node&) {
  throw std::logic_error("cpu flash_attn: not implemented");
}

}  // namespace corral::backend::cpu
namespace corral::backend::cpu {
size_t flash_attn_work_size(const ml::Graph&, const ml::Node&, int) { return 0; }
}  // namespace corral::backend::cpu
