// Q6_K: super-blocks of 256 = 16 groups of 16; per group an int8 scale (times the half d),
// 6-bit levels around 32: x = d*sc*(q - 32). Each 128 values share 64 bytes of ql and 32 of qh:
// value l + 32k (l < 32, k < 4) keeps its low nibble in ql[l + 32*(k%2)] (low nibble for k < 2,
// high for k >= 2) and its top 2 bits at bit 2k of qh[l].
// ggml: quantize_row_q6_K_ref, dequantize_row_q6_K.
#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>

#include "ml/fp16.h"
#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {

void quantize_row_q6_K(const float* x, BlockQ6_K* y, int64_t n) {
  assert(n % kQKK == 0);
  // ggml treats a super-block whose largest group scale is below this as all zeros.
  constexpr float kGroupMaxEps = 1e-15f;
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    BlockQ6_K& blk = y[b];
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int g = 0; g < kQKK / 16; ++g) {
      scales[g] = fit::make_qx_quants(16, 32, x + 16 * g, L + 16 * g);
      const float abs_scale = std::fabs(scales[g]);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scales[g];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&blk, 0, sizeof blk);
      continue;
    }
    // The signed extreme scale maps to -128 (int8's unpaired end).
    const float iscale = -128.f / max_scale;
    blk.d = fp32_to_fp16(1 / iscale);
    for (int g = 0; g < kQKK / 16; ++g) {
      blk.scales[g] = static_cast<int8_t>(std::min(127, fit::nearest_int(iscale * scales[g])));
    }
    for (int g = 0; g < kQKK / 16; ++g) {
      const float d = fp16_to_fp32(blk.d) * static_cast<float>(blk.scales[g]);
      if (d == 0) continue;
      for (int i = 0; i < 16; ++i) {
        const int l = fit::nearest_int(x[16 * g + i] / d);
        L[16 * g + i] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* Lh = L + 128 * h;
      uint8_t* ql = blk.ql + 64 * h;
      uint8_t* qh = blk.qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
        ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
        qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                     ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
      }
    }
  }
}

void dequantize_row_q6_K(const BlockQ6_K* x, float* y, int64_t n) {
  assert(n % kQKK == 0);
  for (int64_t b = 0; b < n / kQKK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int h = 0; h < 2; ++h, y += 128) {
      const uint8_t* ql = x[b].ql + 64 * h;
      const uint8_t* qh = x[b].qh + 32 * h;
      const int8_t* sc = x[b].scales + 8 * h;
      // Quarter k (32 values) of the half: low nibbles of ql[0..31] / ql[32..63] for k = 0 / 1,
      // high nibbles for k = 2 / 3; top bits at bit 2k of qh[l]; scales 2k and 2k + 1.
      for (int k = 0; k < 4; ++k) {
        const uint8_t* qlk = ql + 32 * (k % 2);
        const int nibble_shift = 4 * (k / 2);
        for (int l = 0; l < 32; ++l) {
          const int q = (((qlk[l] >> nibble_shift) & 0xF) | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
          y[32 * k + l] = d * static_cast<float>(sc[2 * k + l / 16]) * static_cast<float>(q);
        }
      }
    }
  }
}

}  // namespace corral::ml::quant
