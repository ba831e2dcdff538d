// Q8_K: super-blocks of 256 with a float scale, int8 levels and the sums of each 16 levels.
// Used for activations in K-format dot products. ggml: quantize_row_q8_K_ref,
// dequantize_row_q8_K.
#include <algorithm>
#include <cassert>

#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {

void quantize_row_q8_K(const float* x, BlockQ8_K* y, int64_t n) {
  assert(n % kQKK == 0);
  for (int64_t b = 0; b < n / kQKK; ++b, x += kQKK) {
    BlockQ8_K& blk = y[b];
    const float max = fit::signed_absmax(x, kQKK);
    if (max == 0) {
      // ggml leaves bsums as they were here; zero is their true value.
      blk.d = 0;
      std::fill(blk.qs, blk.qs + kQKK, int8_t{0});
      std::fill(blk.bsums, blk.bsums + kQKK / 16, int16_t{0});
      continue;
    }
    // -127 rather than -128 keeps every level within +-127 (ggml's IQ2 kernels rely on it).
    const float iscale = -127.f / max;
    for (int j = 0; j < kQKK; ++j) {
      blk.qs[j] = static_cast<int8_t>(std::min(127, fit::nearest_int(iscale * x[j])));
    }
    for (int g = 0; g < kQKK / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += blk.qs[16 * g + i];
      blk.bsums[g] = static_cast<int16_t>(sum);
    }
    blk.d = 1 / iscale;
  }
}

void dequantize_row_q8_K(const BlockQ8_K* x, float* y, int64_t n) {
  assert(n % kQKK == 0);
  for (int64_t b = 0; b < n / kQKK; ++b, y += kQKK) {
    for (int j = 0; j < kQKK; ++j) y[j] = x[b].d * static_cast<float>(x[b].qs[j]);
  }
}

}  // namespace corral::ml::quant
