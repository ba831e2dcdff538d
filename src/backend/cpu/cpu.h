// The CPU backend: SIMD kernels (runtime dispatch: AVX-512/AVX2/scalar) on a persistent
// thread pool. It supports every op, so it is the executor's fallback.
#pragma once

#include <memory>

#include "ml/backend.h"

namespace corral::backend::cpu {

struct CpuOptions {
  int n_threads = 0;  // 0: the number of physical cores
};

std::unique_ptr<ml::Backend> make_backend(CpuOptions options = {});

}  // namespace corral::backend::cpu
