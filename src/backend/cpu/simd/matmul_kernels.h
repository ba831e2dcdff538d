// Matrix-multiplication kernels of the CPU backend, one set per weight dtype and instruction
// set, picked at run time. As in ggml, activations are first converted once per matmul to the
// weight dtype's "vec-dot type" (Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for the K
// formats; F32 weights, F16 and BF16 read f32 activations as they are), so the inner loops
// are integer dot products of whole blocks.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ml/dtype.h"

namespace corral::backend::cpu::simd {

// Instruction sets in increasing order; each includes the ones before it. kAvx512 is AVX-512
// F/BW/VL/DQ with VNNI (vpdpbusd), as on Intel Ice Lake and later and AMD Zen 4.
enum class Isa { kScalar, kAvx2, kAvx512 };
inline constexpr Isa kAllIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};

// The widest instruction set this CPU runs and corral has kernels for (cached after the first
// call).
Isa best_isa();
// Whether this CPU runs the set's kernels.
bool isa_supported(Isa isa);
const char* isa_name(Isa isa);
// The set the environment asks for with CORRAL_CPU_ISA (scalar, avx2, avx512vnni: a narrower
// one than the CPU's best, for comparing kernel variants), else best_isa(). Throws naming the
// value when it is no set or one this CPU lacks.
Isa configured_isa();

// Converts a row of k activations (k a multiple of the vec-dot type's block) to the vec-dot
// type.
using FromF32 = void (*)(const float* x, void* y, int64_t k);

// For r < nr and c < nc: out[c * ldo + r] = dot(row r of w, column c of x) over k elements.
// Row r of the weights starts at w + r * ldw bytes, column c of the (converted) activations at
// x + c * ldx bytes. Implementations tile rows x columns in registers, so every weight block
// loaded is used for several columns.
using Gemm = void (*)(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                      size_t ldo, int nr, int nc);

// Products of many columns (prefill) may instead run on panels: mul_mat copies kPanelRows
// weight rows at a time into a small interleaved buffer (pack), in which one vector holds a few
// elements of each of the 8 rows, so the gemm gets 8 row sums per integer dot product with no
// horizontal reduction and unpacks each panel block once for several columns. Packing costs
// one pass over the rows per chunk of columns, which is small next to the product with
// kPanelMinCols or more columns. The activations get a format of the panel kernels' own
// (from_f32, x_row_bytes).
inline constexpr int kPanelRows = 8;
inline constexpr int64_t kPanelMinCols = 4;

// Copies nr <= kPanelRows weight rows (row r at w + r * ldw bytes) into a panel of
// panel_bytes(k) bytes; rows nr..7 of the panel are zero.
using PackPanel = void (*)(int64_t k, const void* w, size_t ldw, int nr, void* panel);
// For r < nr and c < nc: out[c * ldo + r] = dot(row r of the panel, column c of x).
using PanelGemm = void (*)(int64_t k, const void* panel, const void* x, size_t ldx, float* out,
                           size_t ldo, int nr, int nc);

struct PanelKernels {
  FromF32 from_f32 = nullptr;                  // null: the gemm reads f32 activations in place
  size_t (*x_row_bytes)(int64_t k) = nullptr;  // 0 where activations are read in place
  size_t (*panel_bytes)(int64_t k) = nullptr;
  PackPanel pack = nullptr;
  PanelGemm gemm = nullptr;
  // Only for weights packed once at load time (the backend's constant weights): packing per
  // product would not pay where the row kernels are already fast (f32).
  bool packed_only = false;
};

struct MatMulKernels {
  ml::DType vec_type = ml::DType::F32;  // what activations are converted to
  FromF32 from_f32 = nullptr;           // null when vec_type is F32 (used in place)
  Gemm gemm = nullptr;
  const PanelKernels* panel = nullptr;  // null where the set has no panel kernels for the dtype
};

// Kernels for weights of dtype w on the given instruction set (the best one this CPU runs where
// it lacks the set asked for); formats without a kernel for that set get the next narrower
// set's. Every dtype mul_mat accepts has kernels.
const MatMulKernels& matmul_kernels(ml::DType w, Isa isa = best_isa());

// Per-set tables (null where a set has no kernel for w). Used by matmul_kernels and by tests
// that compare the sets with each other.
const MatMulKernels* scalar_kernels(ml::DType w);
const MatMulKernels* avx2_kernels(ml::DType w);
const PanelKernels* avx2_panel_kernels(ml::DType w);
const PanelKernels* avx512_panel_kernels(ml::DType w);

// Scalar activation quantizers: the reference ones (ml/quant/formats.h), bit-exact with ggml's.
// The SIMD quantizers must produce the same bytes.
void quantize_row_q8_0_scalar(const float* x, void* y, int64_t k);
void quantize_row_q8_1_scalar(const float* x, void* y, int64_t k);
void quantize_row_q8_K_scalar(const float* x, void* y, int64_t k);
// Activations of the Q4_0 and Q8_0 panel kernels: a Q8_0 block with d widened to float (the
// same value as the half, so the products are bit-for-bit those of the Q8_0 format) and
// sum(qs), which takes a weight offset off all rows at once: sum((q - o) * y) = sum(q * y) -
// o * sum(y).
struct Q8SumBlock {
  int8_t qs[32];
  float d;
  int32_t sum;
};
static_assert(sizeof(Q8SumBlock) == 40);
inline size_t x_row_bytes_q8_0_sum(int64_t k) {
  return static_cast<size_t>(k / 32) * sizeof(Q8SumBlock);
}

// The AVX2 ones (call only where the CPU has AVX2).
void quantize_row_q8_0_sum_avx2(const float* x, void* y, int64_t k);
// The 256 unsigned 6-bit quants (0..63) of the Q6_K block at block, in element order, for
// packing panels.
void unpack_q6_K_avx2(const void* block, uint8_t* out);
void quantize_row_q8_0_avx2(const float* x, void* y, int64_t k);
void quantize_row_q8_K_avx2(const float* x, void* y, int64_t k);

}  // namespace corral::backend::cpu::simd
