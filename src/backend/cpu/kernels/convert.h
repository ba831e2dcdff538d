// Conversions between f32 and the dtypes kernels read and write: halves and bfloat16 (through
// the vec primitives) and the q8_0 / q4_0 blocks of cpy and set_rows, which are byte for byte
// what the reference quantizer (ml::quant::quantize_row, after ggml's quantize_row_*_ref)
// writes, so a KV cache filled here and one filled by the reference backend hold the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "backend/cpu/kernels/vec.h"
#include "ml/dtype.h"

namespace corral::backend::cpu {

// Scalar versions; n is a multiple of 32. store_f32 takes q8_0 through the vector primitives
// (the same bytes on every set).
void quantize_q8_0(const float* x, void* y, int64_t n);
void quantize_q4_0(const float* x, void* y, int64_t n);

// n elements of an F32/F16/BF16 row whose elements lie `stride` bytes apart, to f32.
// Halves go through v (the kernel's vector primitives: KernelContext::vops).
void load_f32(const vec::Ops& v, ml::DType t, const void* x, size_t stride, float* y, int64_t n);
// n f32 to a contiguous row of F32/F16/BF16/Q8_0/Q4_0 (n whole blocks for the latter).
void store_f32(const vec::Ops& v, ml::DType t, const float* x, void* y, int64_t n);

}  // namespace corral::backend::cpu
