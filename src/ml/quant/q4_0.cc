// Q4_0: 32 values, one half scale, 4-bit levels around 8. ggml: quantize_row_q4_0_ref,
// dequantize_row_q4_0.
#include <algorithm>
#include <cassert>

#include "ml/fp16.h"
#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    // The signed extreme becomes level 0 (-8 * d): -8 has no positive twin, so using it for the
    // extreme gains half a step of resolution.
    const float max = fit::signed_absmax(x, kQK);
    const float d = max / -8;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      // Truncating x*id + 8.5 rounds half up; the top clamp catches the far side's +8.
      const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int q1 = std::min(15, static_cast<int>(x[j + kQK / 2] * id + 8.5f));
      y[b].qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
    }
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((x[b].qs[j] & 0xF) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((x[b].qs[j] >> 4) - 8) * d;
    }
  }
}

}  // namespace corral::ml::quant
