// Conversions between f32 and the unblocked dtypes (f16, bf16, f64 and the integers).
#pragma once

#include <cstdint>

#include "ml/dtype.h"

namespace corral::ml::quant {

// t is one of F32, F16, BF16, F64, I8, I16, I32, I64. Halves round to nearest even (ggml's
// conversions); integers round to nearest (ties to even) and saturate, NaN becoming 0.
void quantize_row_plain(DType t, const float* x, void* y, int64_t n);
// Integers and f64 convert to the nearest float.
void dequantize_row_plain(DType t, const void* x, float* y, int64_t n);

}  // namespace corral::ml::quant
