// Scalar reference conversions between f32 and every dtype: the block formats bit-compatible
// with llama.cpp/ggml (layouts in blocks.h), the float types, and the integer types.
// These are the obviously-right versions the fast kernels are tested against.
#pragma once

#include <cstdint>

#include "ml/dtype.h"

namespace corral::ml::quant {

// n elements (a multiple of block_size(t)) from f32 to dtype t. Every dtype is accepted; integer
// dtypes round to nearest and saturate.
void quantize_row(DType t, const float* x, void* y, int64_t n);
// n elements of dtype t to f32.
void dequantize_row(DType t, const void* x, float* y, int64_t n);

}  // namespace corral::ml::quant
