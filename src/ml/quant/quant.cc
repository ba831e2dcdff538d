#include "ml/quant/quant.h"

#include <stdexcept>

namespace corral::ml::quant {

void quantize_row(DType, const float*, void*, int64_t) {
  throw std::logic_error("quantize_row: not implemented");
}
void dequantize_row(DType, const void*, float*, int64_t) {
  throw std::logic_error("dequantize_row: not implemented");
}

}  // namespace corral::ml::quant
