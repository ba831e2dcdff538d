// Q8_0 and Q8_1: 32 values, max-abs half scale, int8 levels rounded half away from zero
// (roundf). Q8_1 adds s = d * sum(q). ggml: quantize_row_q8_{0,1}_ref, dequantize_row_q8_0.
#include <algorithm>
#include <cassert>
#include <cmath>

#include "ml/fp16.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {
namespace {

// Scale d = amax / 127 (as float, before rounding to half) and its inverse.
float q8_scale(const float* x, float* id) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127;
  *id = d != 0 ? 1.0f / d : 0.0f;
  return d;
}

}  // namespace

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float id;
    const float d = q8_scale(x, &id);
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) y[b].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

void quantize_row_q8_1(const float* x, BlockQ8_1* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float id;
    const float d = q8_scale(x, &id);
    y[b].d = fp32_to_fp16(d);
    int sum = 0;
    for (int j = 0; j < kQK; ++j) {
      y[b].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      sum += y[b].qs[j];
    }
    // The sum uses the unrounded d, as ggml does.
    y[b].s = fp32_to_fp16(static_cast<float>(sum) * d);
  }
}

void dequantize_row_q8_1(const BlockQ8_1* x, float* y, int64_t n) {
  assert(n % kQK == 0);
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(x[b].qs[j]) * d;
  }
}

}  // namespace corral::ml::quant
