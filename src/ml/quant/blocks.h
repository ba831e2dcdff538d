// Block layouts of the GGUF quantization formats, field for field as ggml stores them (the
// bytes of a tensor in a GGUF file are arrays of these). Halves are raw IEEE binary16 bits.
#pragma once

#include <cstdint>

#include "ml/dtype.h"

namespace corral::ml::quant {

inline constexpr int kQK = 32;    // elements per block of the 32-wide formats
inline constexpr int kQKK = 256;  // elements per super-block of the K formats
inline constexpr int kKScaleSize = 12;

using half = uint16_t;

// x = d * (q - 8), q in 0..15; qs[j] holds element j (low nibble) and j + 16 (high nibble).
struct BlockQ4_0 {
  half d;
  uint8_t qs[kQK / 2];
};
// x = d * q + m.
struct BlockQ4_1 {
  half d, m;
  uint8_t qs[kQK / 2];
};
// x = d * (q - 16), q = nibble | (bit j of qh) << 4.
struct BlockQ5_0 {
  half d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
  half d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
// x = d * q.
struct BlockQ8_0 {
  half d;
  int8_t qs[kQK];
};
// s = d * sum(qs): used for activations against q4_1/q5_1 weights.
struct BlockQ8_1 {
  half d, s;
  int8_t qs[kQK];
};
// 16 groups of 16: 4-bit scale and min per group (scales[i] = scale | min << 4), 2-bit quants.
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];
  uint8_t qs[kQKK / 4];
  half d, dmin;
};
// 16 groups of 16: 6-bit signed scales packed in 12 bytes, 2 low bits in qs, high bit in hmask.
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];
  uint8_t qs[kQKK / 4];
  uint8_t scales[12];
  half d;
};
// 8 groups of 32: 6-bit scale and min per group packed in 12 bytes, 4-bit quants.
struct BlockQ4_K {
  half d, dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qs[kQKK / 2];
};
// As Q4_K with a fifth bit per element in qh.
struct BlockQ5_K {
  half d, dmin;
  uint8_t scales[kKScaleSize];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
// 16 groups of 16: int8 scales, 6-bit quants (4 low bits in ql, 2 high in qh), x = d*sc*(q-32).
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];
  uint8_t qh[kQKK / 4];
  int8_t scales[kQKK / 16];
  half d;
};
// Activations for K-format dot products: float scale, int8 quants, sums of each 16.
struct BlockQ8_K {
  float d;
  int8_t qs[kQKK];
  int16_t bsums[kQKK / 16];
};

static_assert(sizeof(BlockQ4_0) == 18 && sizeof(BlockQ4_1) == 20 && sizeof(BlockQ5_0) == 22 &&
              sizeof(BlockQ5_1) == 24 && sizeof(BlockQ8_0) == 34 && sizeof(BlockQ8_1) == 36);
static_assert(sizeof(BlockQ2_K) == 84 && sizeof(BlockQ3_K) == 110 && sizeof(BlockQ4_K) == 144 &&
              sizeof(BlockQ5_K) == 176 && sizeof(BlockQ6_K) == 210 && sizeof(BlockQ8_K) == 292);

}  // namespace corral::ml::quant
