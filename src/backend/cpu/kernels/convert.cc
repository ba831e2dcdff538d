#include "backend/cpu/kernels/convert.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/kernels/vec.h"
#include "ml/fp16.h"
#include "ml/quant/blocks.h"

namespace corral::backend::cpu {

using ml::quant::BlockQ4_0;
using ml::quant::BlockQ8_0;
using ml::quant::kQK;

void quantize_q8_0(const float* x, void* y, int64_t n) {
  auto* out = static_cast<BlockQ8_0*>(y);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    // The scale maps the largest magnitude to 127; roundf (half away from zero) as the
    // reference rounds.
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = ml::fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) out[b].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void quantize_q4_0(const float* x, void* y, int64_t n) {
  auto* out = static_cast<BlockQ4_0*>(y);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    // The signed value of largest magnitude maps to -8, so the full range -8..7 is used on the
    // side that needs it.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      if (amax < std::fabs(x[j])) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = ml::fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int q0 = static_cast<int8_t>(x[j] * id + 8.5f);
      const int q1 = static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f);
      out[b].qs[j] = static_cast<uint8_t>((q0 < 15 ? q0 : 15) | (q1 < 15 ? q1 : 15) << 4);
    }
  }
}

void load_f32(const vec::Ops& v, ml::DType t, const void* x, size_t stride, float* y, int64_t n) {
  const auto* p = static_cast<const char*>(x);
  switch (t) {
    case ml::DType::F32:
      if (stride == sizeof(float)) {
        std::memcpy(y, p, n * sizeof(float));
      } else {
        for (int64_t i = 0; i < n; ++i) std::memcpy(y + i, p + i * stride, sizeof(float));
      }
      return;
    case ml::DType::F16:
    case ml::DType::BF16: {
      const bool half = t == ml::DType::F16;
      if (stride == sizeof(uint16_t)) {
        const auto* h = static_cast<const uint16_t*>(x);
        half ? v.f16_to_f32(h, y, n) : v.bf16_to_f32(h, y, n);
        return;
      }
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + i * stride, sizeof(h));
        y[i] = half ? ml::fp16_to_fp32(h) : ml::bf16_to_fp32(h);
      }
      return;
    }
    default:
      return;  // excluded when the op was recorded
  }
}

void store_f32(const vec::Ops& v, ml::DType t, const float* x, void* y, int64_t n) {
  switch (t) {
    case ml::DType::F32:
      std::memcpy(y, x, n * sizeof(float));
      return;
    case ml::DType::F16:
      v.f32_to_f16(x, static_cast<uint16_t*>(y), n);
      return;
    case ml::DType::BF16:
      v.f32_to_bf16(x, static_cast<uint16_t*>(y), n);
      return;
    case ml::DType::Q8_0:
      v.quantize_q8_0(x, y, n);
      return;
    case ml::DType::Q4_0:
      quantize_q4_0(x, y, n);
      return;
    default:
      return;  // excluded when the op was recorded
  }
}

}  // namespace corral::backend::cpu
