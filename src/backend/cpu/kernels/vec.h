// Row primitives the CPU kernels are built from: loops over contiguous floats (and halves) with
// a scalar version (vec.cc) and an AVX2+FMA+F16C version (vec_avx2.cc). vec::ops() picks the
// widest one the processor has, once; the tables are exposed so tests can compare them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/simd/matmul_kernels.h"

namespace corral::backend::cpu::vec {

struct Ops {
  const char* name;
  // y[i] = a[i] (op) b[i]; y may alias a or b.
  void (*add)(const float* a, const float* b, float* y, int64_t n);
  void (*sub)(const float* a, const float* b, float* y, int64_t n);
  void (*mul)(const float* a, const float* b, float* y, int64_t n);
  void (*div)(const float* a, const float* b, float* y, int64_t n);
  // y = x * s + b.
  void (*scale)(const float* x, float* y, int64_t n, float s, float b);
  void (*silu)(const float* x, float* y, int64_t n);
  // y = silu(g) * u.
  void (*swiglu)(const float* g, const float* u, float* y, int64_t n);
  void (*gelu_tanh)(const float* x, float* y, int64_t n);
  void (*gelu_erf)(const float* x, float* y, int64_t n);
  void (*gelu_quick)(const float* x, float* y, int64_t n);
  float (*sum)(const float* x, int64_t n);
  float (*sum_squares)(const float* x, int64_t n);
  float (*max)(const float* x, int64_t n);
  // y = exp(x - m); returns the sum of y.
  float (*exp_sum)(const float* x, float* y, int64_t n, float m);
  float (*dot)(const float* a, const float* b, int64_t n);
  // Dot of a half row and a float row.
  float (*dot_f16)(const uint16_t* a, const float* b, int64_t n);
  // y += a * x.
  void (*axpy)(float a, const float* x, float* y, int64_t n);
  void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);
  void (*f16_to_f32)(const uint16_t* x, float* y, int64_t n);
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);
  void (*bf16_to_f32)(const uint16_t* x, float* y, int64_t n);
  void (*f32_to_bf16)(const float* x, uint16_t* y, int64_t n);
  // Scores of a tile of rows: out[j] = dot(row j, q) for rows `stride` bytes apart (f32 or f16
  // rows of d elements).
  void (*dot_rows)(const void* rows, size_t stride, int64_t n_rows, const float* q, int64_t d,
                   float* out);
  void (*dot_rows_f16)(const void* rows, size_t stride, int64_t n_rows, const float* q, int64_t d,
                       float* out);
  // acc += sum_j w[j] * row j over a tile of rows (rows with w[j] == 0 are skipped).
  void (*acc_rows)(const void* rows, size_t stride, int64_t n_rows, const float* w, int64_t d,
                   float* acc);
  void (*acc_rows_f16)(const void* rows, size_t stride, int64_t n_rows, const float* w, int64_t d,
                       float* acc);
  // n floats (whole blocks of 32) to q8_0 blocks, byte for byte as the reference quantizer.
  void (*quantize_q8_0)(const float* x, void* y, int64_t n);
  // Rotates n pairs: y[i] = x[i] c[i] - x[i+h] s[i], y[i+h] = x[i] s[i] + x[i+h] c[i] where
  // h = half (NeoX layout) ...
  void (*rotate_halves)(const float* x, float* y, const float* c, const float* s, int64_t n,
                        int64_t half);
  // ... and adjacent pairs (x[2i], x[2i+1]) with cos/sin per pair (normal layout).
  void (*rotate_pairs)(const float* x, float* y, const float* c, const float* s, int64_t n);
};

const Ops& scalar_ops();
// nullptr when the processor (or the build) lacks AVX2+FMA+F16C.
const Ops* avx2_ops();
// The fastest table this processor runs.
const Ops& ops();
// The table of an instruction set (the CPU backend's CpuOptions::isa): scalar for kScalar, else
// the fastest (the vector primitives have no AVX-512 versions).
// Not inline: vec_avx2.cc includes this header, and an inline copy compiled there for AVX2 could
// be the one the linker keeps.
const Ops& ops(simd::Isa isa);

}  // namespace corral::backend::cpu::vec
