// Runtime choice of the matmul kernels: the instruction set is read once from CPUID
// (cpu_features.h), so one binary runs on any x86-64.
#include <array>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/simd/matmul_kernels.h"

namespace corral::backend::cpu::simd {
namespace {

using ml::DType;

Isa detect_isa() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512_vnni) return Isa::kAvx512;
  return f.avx2 ? Isa::kAvx2 : Isa::kScalar;
}

constexpr size_t kTypes = 64;  // DType numbers are below this

// Kernels of one instruction set for every dtype: the set's own where it has them, else the
// scalar gemm with the set's activation quantizer for the same vec-dot type (the quantizers of
// all sets produce the same bytes, so any gemm can read any of them). AVX-512 has panel
// kernels only (prefill and decode run on panels); its row kernels are AVX2's.
std::array<MatMulKernels, kTypes> build_table(Isa isa) {
  std::array<MatMulKernels, kTypes> table{};
  auto native = [isa](DType t) -> const MatMulKernels* {
    return isa == Isa::kScalar ? nullptr : avx2_kernels(t);
  };
  auto panels = [isa](DType t) -> const PanelKernels* {
    const PanelKernels* p = isa == Isa::kAvx512 ? avx512_panel_kernels(t) : nullptr;
    return p ? p : avx2_panel_kernels(t);
  };
  for (DType t : ml::kAllDTypes) {
    const MatMulKernels* scalar = scalar_kernels(t);
    if (!scalar) continue;
    MatMulKernels k = *scalar;
    if (const MatMulKernels* fast = native(t)) {
      k = *fast;
      k.panel = panels(t);
    } else {
      for (DType other : ml::kAllDTypes) {
        const MatMulKernels* f = native(other);
        if (f && f->vec_type == k.vec_type && f->from_f32) {
          k.from_f32 = f->from_f32;
          break;
        }
      }
    }
    table[static_cast<size_t>(t)] = k;
  }
  return table;
}

}  // namespace

Isa best_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512vnni";
  }
  return "?";
}

bool isa_supported(Isa isa) { return static_cast<int>(isa) <= static_cast<int>(best_isa()); }

Isa configured_isa() {
  const char* env = std::getenv("CORRAL_CPU_ISA");
  if (env == nullptr || *env == '\0') return best_isa();
  for (Isa isa : kAllIsas) {
    if (std::string_view(env) != isa_name(isa)) continue;
    if (!isa_supported(isa)) {
      throw std::runtime_error(std::string("CORRAL_CPU_ISA=") + env + ": this CPU runs " +
                               isa_name(best_isa()) + " and narrower sets only");
    }
    return isa;
  }
  throw std::runtime_error(std::string("CORRAL_CPU_ISA=") + env +
                           ": not an instruction set (scalar, avx2, avx512vnni)");
}

const MatMulKernels& matmul_kernels(DType w, Isa isa) {
  static const std::array<MatMulKernels, kTypes> scalar = build_table(Isa::kScalar);
  static const std::array<MatMulKernels, kTypes> avx2 = build_table(Isa::kAvx2);
  static const std::array<MatMulKernels, kTypes> avx512 = build_table(Isa::kAvx512);
  const size_t i = static_cast<size_t>(w) < kTypes ? static_cast<size_t>(w) : 0;
  if (!isa_supported(isa)) isa = best_isa();
  switch (isa) {
    case Isa::kScalar:
      return scalar[i];
    case Isa::kAvx2:
      return avx2[i];
    case Isa::kAvx512:
      return avx512[i];
  }
  return scalar[i];
}

}  // namespace corral::backend::cpu::simd
