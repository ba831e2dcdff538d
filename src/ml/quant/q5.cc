// Q5_0 and Q5_1: as Q4_0/Q4_1 with a fifth bit per value, bit j of the 32-bit little-endian qh
// word for value j. ggml: quantize_row_q5_{0,1}_ref, dequantize_row_q5_{0,1}.
#include <algorithm>
#include <cassert>
#include <cfloat>

#include "ml/fp16.h"
#include "ml/quant/fit.h"
#include "ml/quant/formats.h"

namespace corral::ml::quant {
namespace {

// Packs 32 five-bit levels: low nibbles into qs (value j low, j + 16 high), fifth bits into qh.
void pack5(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
  uint32_t high = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kQK / 2] & 0x0F) << 4));
    high |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
    high |= static_cast<uint32_t>((q[j + kQK / 2] >> 4) & 1) << (j + kQK / 2);
  }
  for (int k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(high >> (8 * k));
}

// The 32 five-bit levels of a block.
void unpack5(const uint8_t* qs, const uint8_t* qh, int* q) {
  const uint32_t high = static_cast<uint32_t>(qh[0]) | static_cast<uint32_t>(qh[1]) << 8 |
                        static_cast<uint32_t>(qh[2]) << 16 | static_cast<uint32_t>(qh[3]) << 24;
  for (int j = 0; j < kQK / 2; ++j) {
    q[j] = (qs[j] & 0xF) | static_cast<int>(((high >> j) & 1) << 4);
    q[j + kQK / 2] = (qs[j] >> 4) | static_cast<int>(((high >> (j + kQK / 2)) & 1) << 4);
  }
}

}  // namespace

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t n) {
  assert(n % kQK == 0);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float max = fit::signed_absmax(x, kQK);
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) {
      q[j] = static_cast<uint8_t>(std::min(31, static_cast<int>(x[j] * id + 16.5f)));
    }
    pack5(q, y[b].qs, y[b].qh);
  }
}

void dequantize_row_q5_0(const BlockQ5_0* x, float* y, int64_t n) {
  assert(n % kQK == 0);
  int q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    unpack5(x[b].qs, x[b].qh, q);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q[j] - 16) * d;
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t n) {
  assert(n % kQK == 0);
  uint8_t q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float min = FLT_MAX;
    float max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / 31;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[b].d = fp32_to_fp16(d);
    y[b].m = fp32_to_fp16(min);
    // No top clamp here (ggml has none): (max - min) * id rounds to at most 31.
    for (int j = 0; j < kQK; ++j) {
      q[j] = static_cast<uint8_t>(static_cast<int>((x[j] - min) * id + 0.5f));
    }
    pack5(q, y[b].qs, y[b].qh);
  }
}

void dequantize_row_q5_1(const BlockQ5_1* x, float* y, int64_t n) {
  assert(n % kQK == 0);
  int q[kQK];
  for (int64_t b = 0; b < n / kQK; ++b, y += kQK) {
    const float d = fp16_to_fp32(x[b].d);
    const float m = fp16_to_fp32(x[b].m);
    unpack5(x[b].qs, x[b].qh, q);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q[j]) * d + m;
  }
}

}  // namespace corral::ml::quant
