// The CPU backend: SIMD kernels (runtime dispatch: AVX-512/AVX2/scalar) on a persistent
// thread pool. It supports every op, so it is the executor's fallback.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/backend.h"

namespace corral::backend::cpu {

struct CpuOptions {
  int n_threads = 0;  // 0: the number of physical cores
  // Host bytes that stay unchanged while the backend lives: a model's mapped weights. A matrix
  // product whose weights lie in one of these ranges reads a copy of them repacked, on first
  // use, into the layout of the fastest kernels (8 rows interleaved, as many bytes as the
  // original); everything else is read in place.
  std::vector<std::span<const std::byte>> constant = {};
  // The instruction set of the kernels: the matmul kernels that run the products and pack the
  // constant weights (both must agree: the packed layout is the set's own), and the vector
  // primitives of the other ops. Narrower sets are there to compare kernel variants (the op
  // harness runs every case on each; users set `CORRAL_CPU_ISA`); make_backend rejects a set
  // this CPU lacks.
  simd::Isa isa = simd::configured_isa();
};

std::unique_ptr<ml::Backend> make_backend(CpuOptions options = {});

}  // namespace corral::backend::cpu
