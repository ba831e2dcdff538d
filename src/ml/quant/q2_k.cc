// Q2_K: super-blocks of 256 = 16 groups of 16; per group a 4-bit scale and a 4-bit min (scaled
// by the super-block's half d and dmin), 2-bit levels: x = d*sc*q - dmin*m.
// ggml: quantize_row_q2_K_ref, dequantize_row_q2_K.
#include <algorithm>
#include <cassert>
#include <cmath>

#include "ml/fp16.h"
#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {
namespace {

// 2-bit levels: value e of each 128-half sits in byte e % 32 of that half's 32 bytes, at bit
// 2 * (e / 32) (four interleaved quarters).
void pack2(const uint8_t* L, uint8_t* qs) {
  for (int half = 0; half < kQKK; half += 128) {
    for (int l = 0; l < 32; ++l) {
      qs[half / 4 + l] = static_cast<uint8_t>(L[half + l] | (L[half + l + 32] << 2) |
                                              (L[half + l + 64] << 4) | (L[half + l + 96] << 6));
    }
  }
}

}  // namespace

void quantize_row_q2_K(const float* x, BlockQ2_K* y, int64_t n) {
  assert(n % kQKK == 0);
  constexpr float kQ4Scale = 15.f;  // 4-bit range of the group scales and mins
  uint8_t L[kQKK];
  uint8_t L_aux[16];
  float weights[16];
  float mins[kQKK / 16];
  float scales[kQKK / 16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    float max_scale = 0;
    float max_min = 0;
    for (int j = 0; j < kQKK / 16; ++j) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fit::make_qkx2_quants(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], L_aux,
                                        -0.5f, 0.1f, 15, true);
      max_scale = std::max(max_scale, scales[j]);
      max_min = std::max(max_min, mins[j]);
    }
    BlockQ2_K& blk = y[b];
    if (max_scale > 0) {
      const float iscale = kQ4Scale / max_scale;
      for (int j = 0; j < kQKK / 16; ++j) {
        blk.scales[j] = static_cast<uint8_t>(fit::nearest_int(iscale * scales[j]));
      }
      blk.d = fp32_to_fp16(max_scale / kQ4Scale);
    } else {
      std::fill(blk.scales, blk.scales + kQKK / 16, uint8_t{0});
      blk.d = fp32_to_fp16(0.f);
    }
    if (max_min > 0) {
      const float iscale = kQ4Scale / max_min;
      for (int j = 0; j < kQKK / 16; ++j) {
        blk.scales[j] |= static_cast<uint8_t>(fit::nearest_int(iscale * mins[j]) << 4);
      }
      blk.dmin = fp32_to_fp16(max_min / kQ4Scale);
    } else {
      blk.dmin = fp32_to_fp16(0.f);
    }
    // Requantize against the rounded scales; a group whose scale rounded to 0 keeps its fit.
    for (int j = 0; j < kQKK / 16; ++j) {
      const float d = fp16_to_fp32(blk.d) * static_cast<float>(blk.scales[j] & 0xF);
      if (d == 0) continue;
      const float dm = fp16_to_fp32(blk.dmin) * static_cast<float>(blk.scales[j] >> 4);
      for (int i = 0; i < 16; ++i) {
        const int l = fit::nearest_int((x[16 * j + i] + dm) / d);
        L[16 * j + i] = static_cast<uint8_t>(std::max(0, std::min(3, l)));
      }
    }
    pack2(L, blk.qs);
  }
}

void dequantize_row_q2_K(const BlockQ2_K* x, float* y, int64_t n) {
  assert(n % kQKK == 0);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    const float dmin = fp16_to_fp32(x[b].dmin);
    // Group g (16 values, e = 16g..16g+15) lies in half g / 8, quarter (g % 8) / 2, and the
    // first or second 16 bytes of that half's 32 (g % 2).
    for (int g = 0; g < kQKK / 16; ++g, y += 16) {
      const uint8_t* q = x[b].qs + 32 * (g / 8) + 16 * (g % 2);
      const int shift = 2 * ((g % 8) / 2);
      const uint8_t sc = x[b].scales[g];
      const float dl = d * static_cast<float>(sc & 0xF);
      const float ml = dmin * static_cast<float>(sc >> 4);
      for (int l = 0; l < 16; ++l) y[l] = dl * static_cast<float>((q[l] >> shift) & 3) - ml;
    }
  }
}

}  // namespace corral::ml::quant
