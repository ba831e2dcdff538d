// What this processor can run, read once from CPUID, so one binary picks the widest kernels
// present on any x86-64. (__builtin_cpu_supports is not used: clang 14 lacks "f16c".)
#pragma once

namespace corral::backend::cpu {

struct CpuFeatures {
  bool avx2 = false;    // with FMA, F16C and BMI2, and the OS saving YMM state
  bool avx512 = false;  // F, BW, VL, DQ with the OS saving ZMM state
  bool avx512_vnni = false;
};

const CpuFeatures& cpu_features();

}  // namespace corral::backend::cpu
