#include "ml/quant/plain.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "ml/fp16.h"

namespace corral::ml::quant {
namespace {

// Round to nearest (ties to even, the default rounding mode) and clamp to Int's range. The
// bounds are compared as floats: -2^(bits-1) is exact and 2^(bits-1) is the first value that
// no longer fits.
template <typename Int>
Int saturate(float v) {
  if (std::isnan(v)) return 0;
  constexpr float kUpper = -static_cast<float>(std::numeric_limits<Int>::min());
  const float r = std::nearbyint(v);
  if (r >= kUpper) return std::numeric_limits<Int>::max();
  if (r <= static_cast<float>(std::numeric_limits<Int>::min())) {
    return std::numeric_limits<Int>::min();
  }
  return static_cast<Int>(r);
}

template <typename Int>
void to_int(const float* x, void* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const Int v = saturate<Int>(x[i]);
    std::memcpy(static_cast<char*>(y) + i * sizeof(Int), &v, sizeof v);
  }
}

template <typename T>
void to_float(const void* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, static_cast<const char*>(x) + i * sizeof(T), sizeof v);
    y[i] = static_cast<float>(v);
  }
}

[[noreturn]] void not_plain(const char* what, DType t) {
  throw std::invalid_argument(std::string(what) + ": dtype " + std::string(dtype_name(t)) +
                              " is a block format");
}

}  // namespace

void quantize_row_plain(DType t, const float* x, void* y, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      uint16_t* out = static_cast<uint16_t*>(y);
      for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_fp16(x[i]);
      return;
    }
    case DType::BF16: {
      uint16_t* out = static_cast<uint16_t*>(y);
      for (int64_t i = 0; i < n; ++i) out[i] = fp32_to_bf16(x[i]);
      return;
    }
    case DType::F64:
      for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        std::memcpy(static_cast<char*>(y) + i * sizeof(double), &v, sizeof v);
      }
      return;
    case DType::I8:
      return to_int<int8_t>(x, y, n);
    case DType::I16:
      return to_int<int16_t>(x, y, n);
    case DType::I32:
      return to_int<int32_t>(x, y, n);
    case DType::I64:
      return to_int<int64_t>(x, y, n);
    default:
      not_plain("quantize_row_plain", t);
  }
}

void dequantize_row_plain(DType t, const void* x, float* y, int64_t n) {
  switch (t) {
    case DType::F32:
      std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: {
      const uint16_t* in = static_cast<const uint16_t*>(x);
      for (int64_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(in[i]);
      return;
    }
    case DType::BF16: {
      const uint16_t* in = static_cast<const uint16_t*>(x);
      for (int64_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(in[i]);
      return;
    }
    case DType::F64:
      return to_float<double>(x, y, n);
    case DType::I8:
      return to_float<int8_t>(x, y, n);
    case DType::I16:
      return to_float<int16_t>(x, y, n);
    case DType::I32:
      return to_float<int32_t>(x, y, n);
    case DType::I64:
      return to_float<int64_t>(x, y, n);
    default:
      not_plain("dequantize_row_plain", t);
  }
}

}  // namespace corral::ml::quant
