// The CUDA backend's entry points in a build without it (-DCORRAL_CUDA=OFF, the default).
#include <stdexcept>

#include "backend/cuda/cuda.h"

namespace corral::backend::cuda {

bool built() { return false; }

std::vector<DeviceInfo> devices() { return {}; }

std::string unavailable_reason() {
  return "corral was built without the CUDA backend (configure with -DCORRAL_CUDA=ON)";
}

std::unique_ptr<CudaBackend> make_backend(CudaOptions) {
  throw std::runtime_error("cuda: " + unavailable_reason());
}

}  // namespace corral::backend::cuda
