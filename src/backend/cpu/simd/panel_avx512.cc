// AVX-512 VNNI panel kernels (matmul_kernels.h).
#include <immintrin.h>

#include "backend/cpu/simd/matmul_kernels.h"

namespace corral::backend::cpu::simd {

const PanelKernels* avx512_panel_kernels(ml::DType) { return nullptr; }

}  // namespace corral::backend::cpu::simd
