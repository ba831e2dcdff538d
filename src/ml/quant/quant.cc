#include "ml/quant/quant.h"

#include <stdexcept>
#include <string>

#include "ml/quant/formats.h"
#include "ml/quant/plain.h"

namespace corral::ml::quant {
namespace {

void check_length(const char* what, DType t, int64_t n) {
  if (n < 0 || n % block_size(t) != 0) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(n) +
                                " elements is not a multiple of the " + std::string(dtype_name(t)) +
                                " block size " + std::to_string(block_size(t)));
  }
}

// Calls the per-format function for a block dtype with the buffer cast to its block type.
template <typename Block>
void quantize_as(void (*fn)(const float*, Block*, int64_t), const float* x, void* y, int64_t n) {
  fn(x, static_cast<Block*>(y), n);
}
template <typename Block>
void dequantize_as(void (*fn)(const Block*, float*, int64_t), const void* x, float* y, int64_t n) {
  fn(static_cast<const Block*>(x), y, n);
}

}  // namespace

void quantize_row(DType t, const float* x, void* y, int64_t n) {
  check_length("quantize_row", t, n);
  switch (t) {
    case DType::Q4_0:
      return quantize_as(quantize_row_q4_0, x, y, n);
    case DType::Q4_1:
      return quantize_as(quantize_row_q4_1, x, y, n);
    case DType::Q5_0:
      return quantize_as(quantize_row_q5_0, x, y, n);
    case DType::Q5_1:
      return quantize_as(quantize_row_q5_1, x, y, n);
    case DType::Q8_0:
      return quantize_as(quantize_row_q8_0, x, y, n);
    case DType::Q8_1:
      return quantize_as(quantize_row_q8_1, x, y, n);
    case DType::Q2_K:
      return quantize_as(quantize_row_q2_K, x, y, n);
    case DType::Q3_K:
      return quantize_as(quantize_row_q3_K, x, y, n);
    case DType::Q4_K:
      return quantize_as(quantize_row_q4_K, x, y, n);
    case DType::Q5_K:
      return quantize_as(quantize_row_q5_K, x, y, n);
    case DType::Q6_K:
      return quantize_as(quantize_row_q6_K, x, y, n);
    case DType::Q8_K:
      return quantize_as(quantize_row_q8_K, x, y, n);
    default:
      return quantize_row_plain(t, x, y, n);
  }
}

void dequantize_row(DType t, const void* x, float* y, int64_t n) {
  check_length("dequantize_row", t, n);
  switch (t) {
    case DType::Q4_0:
      return dequantize_as(dequantize_row_q4_0, x, y, n);
    case DType::Q4_1:
      return dequantize_as(dequantize_row_q4_1, x, y, n);
    case DType::Q5_0:
      return dequantize_as(dequantize_row_q5_0, x, y, n);
    case DType::Q5_1:
      return dequantize_as(dequantize_row_q5_1, x, y, n);
    case DType::Q8_0:
      return dequantize_as(dequantize_row_q8_0, x, y, n);
    case DType::Q8_1:
      return dequantize_as(dequantize_row_q8_1, x, y, n);
    case DType::Q2_K:
      return dequantize_as(dequantize_row_q2_K, x, y, n);
    case DType::Q3_K:
      return dequantize_as(dequantize_row_q3_K, x, y, n);
    case DType::Q4_K:
      return dequantize_as(dequantize_row_q4_K, x, y, n);
    case DType::Q5_K:
      return dequantize_as(dequantize_row_q5_K, x, y, n);
    case DType::Q6_K:
      return dequantize_as(dequantize_row_q6_K, x, y, n);
    case DType::Q8_K:
      return dequantize_as(dequantize_row_q8_K, x, y, n);
    default:
      return dequantize_row_plain(t, x, y, n);
  }
}

}  // namespace corral::ml::quant
