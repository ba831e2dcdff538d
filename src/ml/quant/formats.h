// Per-format reference quantize/dequantize, bit-compatible with ggml (ggml/src/ggml-quants.c):
// quantize_row_<fmt> produces the bytes llama.cpp's quantize_row_<fmt>_ref produces (the path
// `llama-quantize` takes without an importance matrix) and dequantize_row_<fmt> the floats
// ggml's dequantize_row_<fmt> produces. n is the element count, a multiple of the block size
// (32 for the 32-wide formats, 256 for the K formats). Scalar, allocation-free, never throw.
// Quantizers expect finite input, as ggml's do (NaN or infinity gives unspecified levels).
#pragma once

#include <cstdint>

#include "ml/quant/blocks.h"

namespace corral::ml::quant {

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n);
void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t n);
void dequantize_row_q4_1(const BlockQ4_1* x, float* y, int64_t n);
void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n);
void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n);
void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n);
void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n);
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n);
// Also stores s = d * sum(qs) (rounded to half), which dot products with q4_1/q5_1 use.
void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n);
void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n);

void quantize_row_q2_K(const float* x, BlockQ2_K* y, int64_t n);
void dequantize_row_q2_K(const BlockQ2_K* x, float* y, int64_t n);
void quantize_row_q3_K(const float* x, BlockQ3_K* y, int64_t n);
void dequantize_row_q3_K(const BlockQ3_K* x, float* y, int64_t n);
void quantize_row_q4_K(const float* x, BlockQ4_K* y, int64_t n);
void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t n);
void quantize_row_q5_K(const float* x, BlockQ5_K* y, int64_t n);
void dequantize_row_q5_K(const BlockQ5_K* x, float* y, int64_t n);
void quantize_row_q6_K(const float* x, BlockQ6_K* y, int64_t n);
void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t n);
// Also fills bsums (sum of each 16 quants), which K-format dot products use for the mins.
void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t n);
void dequantize_row_q8_K(const BlockQ8_K* x, float* y, int64_t n);

// Scale and min (6 bits each) of group j (0..7) of a Q4_K/Q5_K super-block from its 12 packed
// bytes: groups 0..3 sit in the low 6 bits of bytes j (scale) and j+4 (min); groups 4..7 keep
// their low 4 bits in the nibbles of byte j+4 and their high 2 bits in the top bits of bytes
// j-4 (scale) and j (min).
inline void get_scale_min_k4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// All 8 scales and mins at once, out of line: for kernels compiled for a wider instruction set,
// which must not instantiate the inline version (the linker could keep their copy for every
// caller).
void unpack_scales_mins_k4(const uint8_t* packed, uint8_t sc[8], uint8_t m[8]);

// The 16 signed 6-bit group scales of a Q3_K super-block (already minus the bias 32): group j
// keeps its low 4 bits in the low (j < 8) or high (j >= 8) nibble of byte j % 8 and its high
// 2 bits at bit 2*(j/4) of byte 8 + j % 4.
inline void unpack_q3_K_scales(const uint8_t* packed, int8_t* scales) {
  for (int j = 0; j < 16; ++j) {
    const int low = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

}  // namespace corral::ml::quant
