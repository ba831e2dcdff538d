// Q3_K: super-blocks of 256 = 16 groups of 16; per group a signed 6-bit scale (times the half
// d), 3-bit signed levels (2 low bits in qs, the high bit in hmask, set meaning "no -4"):
// x = d*sc*(q - 4). ggml: quantize_row_q3_K_ref, dequantize_row_q3_K.
#include <algorithm>
#include <cassert>
#include <cmath>

#include "ml/fp16.h"
#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {

void quantize_row_q3_K(const float* x, BlockQ3_K* y, int64_t n) {
  assert(n % kQKK == 0);
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    BlockQ3_K& blk = y[b];
    float max_scale = 0;
    float amax = 0;
    for (int j = 0; j < kQKK / 16; ++j) {
      scales[j] = fit::make_q3_quants(16, 4, x + 16 * j, L + 16 * j);
      const float scale = std::fabs(scales[j]);
      if (scale > amax) {
        amax = scale;
        max_scale = scales[j];
      }
    }

    std::fill(blk.scales, blk.scales + 12, uint8_t{0});
    if (max_scale != 0) {
      // The signed extreme scale maps to -32, as in the symmetric formats.
      const float iscale = -32.f / max_scale;
      for (int j = 0; j < kQKK / 16; ++j) {
        // ggml stores the rounded value in an int8 before clamping; it is within +-32 anyway.
        const int8_t rounded = static_cast<int8_t>(fit::nearest_int(iscale * scales[j]));
        const int l = std::max(-32, std::min(31, static_cast<int>(rounded))) + 32;
        if (j < 8) {
          blk.scales[j] = static_cast<uint8_t>(l & 0xF);
        } else {
          blk.scales[j - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
        }
        blk.scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      blk.d = fp32_to_fp16(1 / iscale);
    } else {
      blk.d = fp32_to_fp16(0.f);
    }

    int8_t sc[16];
    unpack_q3_K_scales(blk.scales, sc);
    for (int j = 0; j < kQKK / 16; ++j) {
      const float d = fp16_to_fp32(blk.d) * static_cast<float>(sc[j]);
      if (d == 0) continue;
      for (int i = 0; i < 16; ++i) {
        const int l = fit::nearest_int(x[16 * j + i] / d);
        L[16 * j + i] = static_cast<int8_t>(std::max(-4, std::min(3, l)) + 4);
      }
    }

    // The high bit of value e goes to bit e / 32 of hmask[e % 32].
    std::fill(blk.hmask, blk.hmask + kQKK / 8, uint8_t{0});
    for (int e = 0; e < kQKK; ++e) {
      if (L[e] > 3) {
        blk.hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
        L[e] = static_cast<int8_t>(L[e] - 4);
      }
    }
    for (int half = 0; half < kQKK; half += 128) {
      for (int l = 0; l < 32; ++l) {
        blk.qs[half / 4 + l] =
            static_cast<uint8_t>(L[half + l] | (L[half + l + 32] << 2) | (L[half + l + 64] << 4) |
                                 (L[half + l + 96] << 6));
      }
    }
  }
}

void dequantize_row_q3_K(const BlockQ3_K* x, float* y, int64_t n) {
  assert(n % kQKK == 0);
  int8_t sc[16];
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float d_all = fp16_to_fp32(x[b].d);
    unpack_q3_K_scales(x[b].scales, sc);
    // Group g (16 values) lies in half g / 8, quarter (g % 8) / 2, and the first or second
    // 16 bytes of that half's 32 qs (g % 2); its high bits are bit g / 2 of the same 16 of
    // hmask's 32 bytes.
    for (int g = 0; g < kQKK / 16; ++g, y += 16) {
      const uint8_t* q = x[b].qs + 32 * (g / 8) + 16 * (g % 2);
      const uint8_t* hm = x[b].hmask + 16 * (g % 2);
      const int shift = 2 * ((g % 8) / 2);
      const int hbit = g / 2;
      const float dl = d_all * static_cast<float>(sc[g]);
      for (int l = 0; l < 16; ++l) {
        const int low = (q[l] >> shift) & 3;
        const int minus = (hm[l] >> hbit) & 1 ? 0 : 4;
        y[l] = dl * static_cast<float>(low - minus);
      }
    }
  }
}

}  // namespace corral::ml::quant
