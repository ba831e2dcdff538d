// Q5_K: Q4_K with a fifth bit per value: in each chunk c of 64 values, value l (< 32) takes
// bit 2c of qh[l] and value l + 32 bit 2c+1. ggml: quantize_row_q5_K_ref, dequantize_row_q5_K.
#include <algorithm>
#include <cassert>

#include "ml/fp16.h"
#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {

void quantize_row_q5_K(const float* x, BlockQ5_K* y, int64_t n) {
  assert(n % kQKK == 0);
  uint8_t L[kQKK];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    BlockQ5_K& blk = y[b];
    fit::quantize_k_groups_of_32(x, 31, -0.5f, 0.1f, 15, blk.scales, &blk.d, &blk.dmin, L);
    std::fill(blk.qh, blk.qh + kQKK / 8, uint8_t{0});
    for (int c = 0; c < kQKK / 64; ++c) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * c + l];
        const int hi = L[64 * c + l + 32];
        blk.qs[32 * c + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
        blk.qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
      }
    }
  }
}

void dequantize_row_q5_K(const BlockQ5_K* x, float* y, int64_t n) {
  assert(n % kQKK == 0);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    const uint8_t* qh = x[b].qh;
    for (int c = 0; c < kQKK / 64; ++c) {
      const uint8_t* ql = x[b].qs + 32 * c;
      uint8_t sc;
      uint8_t m;
      get_scale_min_k4(2 * c, x[b].scales, &sc, &m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      get_scale_min_k4(2 * c + 1, x[b].scales, &sc, &m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] & 0xF) + (((qh[l] >> (2 * c)) & 1) << 4);
        *y++ = d1 * static_cast<float>(q) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int q = (ql[l] >> 4) + (((qh[l] >> (2 * c + 1)) & 1) << 4);
        *y++ = d2 * static_cast<float>(q) - m2;
      }
    }
  }
}

}  // namespace corral::ml::quant
