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

enum class Isa { kScalar, kAvx2, kAvx512 };

// The widest instruction set this CPU runs and corral has kernels for (cached after the first
// call). AVX-512 kernels are not written yet, so this is kAvx2 at most.
Isa best_isa();
const char* isa_name(Isa isa);

// Converts a row of k activations (k a multiple of the vec-dot type's block) to the vec-dot
// type.
using FromF32 = void (*)(const float* x, void* y, int64_t k);

// For r < nr and c < nc: out[c * ldo + r] = dot(row r of w, column c of x) over k elements.
// Row r of the weights starts at w + r * ldw bytes, column c of the (converted) activations at
// x + c * ldx bytes. Implementations tile rows x columns in registers, so every weight block
// loaded is used for several columns.
using Gemm = void (*)(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                      size_t ldo, int nr, int nc);

struct MatMulKernels {
  ml::DType vec_type = ml::DType::F32;  // what activations are converted to
  FromF32 from_f32 = nullptr;           // null when vec_type is F32 (used in place)
  Gemm gemm = nullptr;
};

// Kernels for weights of dtype w on the given instruction set; formats without a kernel for
// that set get the scalar ones. Every dtype mul_mat accepts has kernels.
const MatMulKernels& matmul_kernels(ml::DType w, Isa isa = best_isa());

// Per-set tables (null where a set has no kernel for w). Used by matmul_kernels and by tests
// that compare the sets with each other.
const MatMulKernels* scalar_kernels(ml::DType w);
const MatMulKernels* avx2_kernels(ml::DType w);

// Scalar activation quantizers: the reference ones (ml/quant/formats.h), bit-exact with ggml's.
// The SIMD quantizers must produce the same bytes.
void quantize_row_q8_0_scalar(const float* x, void* y, int64_t k);
void quantize_row_q8_1_scalar(const float* x, void* y, int64_t k);
void quantize_row_q8_K_scalar(const float* x, void* y, int64_t k);

}  // namespace corral::backend::cpu::simd
