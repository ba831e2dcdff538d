// Q4_K: super-blocks of 256 = 8 groups of 32; per group a 6-bit scale and 6-bit min (times the
// halves d and dmin), 4-bit levels: x = d*sc*q - dmin*m. Each 64 values share 32 bytes of qs:
// the first 32 in the low nibbles, the next 32 in the high nibbles.
// ggml: quantize_row_q4_K_ref, dequantize_row_q4_K.
#include <cassert>

#include "ml/fp16.h"
#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {

void quantize_row_q4_K(const float* x, BlockQ4_K* y, int64_t n) {
  assert(n % kQKK == 0);
  uint8_t L[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    BlockQ4_K& blk = y[b];
    fit::quantize_k_groups_of_32(x, 15, -1.f, 0.1f, 20, blk.scales, &blk.d, &blk.dmin, L);
    for (int c = 0; c < kQKK / 64; ++c) {
      for (int l = 0; l < 32; ++l) {
        blk.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + l + 32] << 4));
      }
    }
  }
}

void dequantize_row_q4_K(const BlockQ4_K* x, float* y, int64_t n) {
  assert(n % kQKK == 0);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    for (int c = 0; c < kQKK / 64; ++c) {
      const uint8_t* q = x[b].qs + 32 * c;
      uint8_t sc;
      uint8_t m;
      get_scale_min_k4(2 * c, x[b].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      get_scale_min_k4(2 * c + 1, x[b].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void unpack_scales_mins_k4(const uint8_t* packed, uint8_t sc[8], uint8_t m[8]) {
  for (int j = 0; j < 8; ++j) get_scale_min_k4(j, packed, &sc[j], &m[j]);
}

}  // namespace corral::ml::quant
