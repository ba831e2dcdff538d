// F16 conversion against llama.cpp's converter: stories260K-f16.gguf and -f32.gguf were written
// by llama.cpp's convert script from the same checkpoint, so every F16 tensor must be exactly
// our f32 -> f16 rounding of its F32 twin, and widening it back must give values within half a
// half-precision step.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ml/dtype.h"
#include "ml/gguf/reader.h"
#include "ml/quant/quant.h"
#include "testdata.h"

namespace corral::ml::quant {
namespace {

TEST(QuantGguf, F16TensorsWrittenByLlamaCppEqualOurRoundingOfTheF32File) {
  const gguf::File f16 =
      gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f16.gguf"));
  const gguf::File f32 =
      gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  int n_f16 = 0;
  for (const gguf::TensorInfo& t : f16.tensors()) {
    if (t.dtype != DType::F16) continue;
    ++n_f16;
    const gguf::TensorInfo& ref = f32.tensor(t.name);
    ASSERT_EQ(ref.dtype, DType::F32) << t.name;
    ASSERT_EQ(ref.n_elements(), t.n_elements()) << t.name;
    const int64_t n = t.n_elements();
    std::vector<float> x(n);
    std::memcpy(x.data(), ref.data, n * sizeof(float));

    std::vector<uint16_t> ours(n);
    quantize_row(DType::F16, x.data(), ours.data(), n);
    EXPECT_EQ(std::memcmp(ours.data(), t.data, n * sizeof(uint16_t)), 0) << t.name;

    std::vector<float> y(n);
    dequantize_row(DType::F16, t.data, y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      // Half has 11 significant bits: the rounding error is at most 2^-11 relative (normals)
      // or half the subnormal step 2^-25.
      const float tol = std::max(std::fabs(x[i]) * 0x1p-11f, 0x1p-25f);
      ASSERT_LE(std::fabs(y[i] - x[i]), tol) << t.name << "[" << i << "]";
    }
  }
  EXPECT_EQ(n_f16, 37);  // every 2-D weight; norms stay F32
}

}  // namespace
}  // namespace corral::ml::quant
