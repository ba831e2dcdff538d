// Reference quantize/dequantize: error bounds of every format on several distributions,
// hand-built blocks with exactly known values, idempotence where ggml's algorithm guarantees
// it, and the plain dtypes' conversions on their edge cases.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "ml/dtype.h"
#include "ml/fp16.h"
#include "ml/quant/formats.h"
#include "ml/quant/quant.h"

namespace corral::ml::quant {
namespace {

// Deterministic data built from integer arithmetic and exactly rounded float operations only,
// so the same values come out on every IEEE machine (golden_test relies on this too).
class Lcg {
 public:
  explicit Lcg(uint64_t seed) : state_(seed) {}
  uint32_t next() {
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(state_ >> 33);  // 31 bits
  }
  // Uniform in [-1, 1).
  float uniform() { return static_cast<float>(next()) * (1.0f / 1073741824.0f) - 1.0f; }
  // Roughly N(0, 1): a scaled sum of four uniforms (Irwin-Hall), no libm needed.
  float gaussian() { return (uniform() + uniform() + uniform() + uniform()) * 0.8660254f; }

 private:
  uint64_t state_;
};

enum class Dist { kUniform, kGaussian, kOutliers, kZeros, kConstant };

std::vector<float> make_data(Dist dist, int64_t n, uint64_t seed) {
  Lcg rng(seed);
  std::vector<float> x(n);
  for (int64_t i = 0; i < n; ++i) {
    switch (dist) {
      case Dist::kUniform:
        x[i] = rng.uniform();
        break;
      case Dist::kGaussian:
        x[i] = rng.gaussian();
        break;
      // Gaussian with one value in 64 blown up 30x: the case that hurts max-abs scales.
      case Dist::kOutliers:
        x[i] = rng.gaussian() * (rng.next() % 64 == 0 ? 30.f : 1.f);
        break;
      case Dist::kZeros:
        x[i] = 0;
        break;
      case Dist::kConstant:
        x[i] = 0.75f;
        break;
    }
  }
  return x;
}

std::vector<float> round_trip(DType t, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(row_size(t, n));
  quantize_row(t, x.data(), q.data(), n);
  std::vector<float> y(n);
  dequantize_row(t, q.data(), y.data(), n);
  return y;
}

double rms(const std::vector<float>& x) {
  double s = 0;
  for (float v : x) s += static_cast<double>(v) * v;
  return std::sqrt(s / static_cast<double>(x.size()));
}

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    s += d * d;
  }
  return std::sqrt(s / static_cast<double>(a.size()));
}

struct Bound {
  DType type;
  // RMSE / RMS(x) on uniform, gaussian, and gaussian-with-outliers data (a block's scale then
  // follows its outlier, so the other values get coarser steps).
  double uniform, gaussian, outliers;
};

// What each format achieves on these 4096 values, with ~30% headroom over the measured error:
// bits per weight set the order (8 bits ~ 2^-8 of the range, each bit fewer doubles it), the
// asymmetric and K formats do a little better than their symmetric 32-wide peers.
constexpr Bound kBounds[] = {
    {DType::F32, 0, 0, 0},
    {DType::F64, 0, 0, 0},
    {DType::F16, 5e-4, 5e-4, 5e-4},
    {DType::BF16, 3e-3, 3e-3, 3e-3},
    {DType::Q8_0, 0.005, 0.0065, 0.015},
    {DType::Q8_1, 0.005, 0.0065, 0.015},
    {DType::Q8_K, 0.005, 0.008, 0.035},
    {DType::Q6_K, 0.017, 0.022, 0.04},
    {DType::Q5_0, 0.04, 0.052, 0.11},
    {DType::Q5_1, 0.039, 0.047, 0.068},
    {DType::Q5_K, 0.036, 0.045, 0.066},
    {DType::Q4_0, 0.085, 0.105, 0.17},
    {DType::Q4_1, 0.08, 0.098, 0.15},
    {DType::Q4_K, 0.072, 0.088, 0.122},
    {DType::Q3_K, 0.165, 0.19, 0.155},
    {DType::Q2_K, 0.31, 0.37, 0.37},
};

TEST(Quant, RoundTripErrorWithinEachFormatsBound) {
  constexpr int64_t n = 4096;
  for (const Bound& b : kBounds) {
    const std::pair<Dist, double> cases[] = {
        {Dist::kUniform, b.uniform}, {Dist::kGaussian, b.gaussian}, {Dist::kOutliers, b.outliers}};
    for (const auto& [dist, bound] : cases) {
      const std::vector<float> x = make_data(dist, n, 42);
      const double rel = rmse(x, round_trip(b.type, x)) / rms(x);
      EXPECT_LE(rel, bound) << dtype_name(b.type) << " distribution " << static_cast<int>(dist);
    }
  }
}

TEST(Quant, ZerosAndConstantRowsSurvive) {
  for (DType t : kAllDTypes) {
    const int64_t n = 512;
    const std::vector<float> zeros = make_data(Dist::kZeros, n, 0);
    for (float v : round_trip(t, zeros)) ASSERT_EQ(v, 0.0f) << dtype_name(t);
    const std::vector<float> constant = make_data(Dist::kConstant, n, 0);
    const std::vector<float> y = round_trip(t, constant);
    // 0.75 is exact in every dtype's grid except the integers (which round it to 1); block
    // formats may land a rounding step off.
    const bool integer = t == DType::I8 || t == DType::I16 || t == DType::I32 || t == DType::I64;
    for (float v : y) ASSERT_NEAR(v, integer ? 1.0f : 0.75f, 0.75f / 30) << dtype_name(t);
  }
}

TEST(Quant, QuantizeRowRejectsAPartialBlock) {
  std::vector<float> x(48, 1.0f);
  std::vector<uint8_t> q(64);
  EXPECT_THROW(quantize_row(DType::Q4_0, x.data(), q.data(), 48), std::invalid_argument);
  EXPECT_THROW(dequantize_row(DType::Q4_K, q.data(), x.data(), 32), std::invalid_argument);
  EXPECT_NO_THROW(quantize_row(DType::F16, x.data(), q.data(), 3));
}

// ---------------------------------------------------------------------------------------------
// Hand-built blocks: bytes written out by hand, expected values computed by hand from the
// format's definition (ggml's dequantize_row_<fmt>). Halves used: 0x3C00 = 1.0, 0x3800 = 0.5,
// 0x3400 = 0.25, 0x3000 = 0.125, 0x2000 = 2^-7, 0xBC00 = -1.0.

template <typename Block>
std::vector<float> dequantize_block(DType t, const Block& b) {
  std::vector<float> y(block_size(t));
  static_assert(sizeof(Block) > 0);
  EXPECT_EQ(sizeof(Block), type_size(t));
  dequantize_row(t, &b, y.data(), block_size(t));
  return y;
}

TEST(QuantBlocks, Q4_0LowNibblesFirstThenHighNibbles) {
  // d = 0.5; byte j holds element j (low nibble, = j) and element j + 16 (high nibble,
  // = 15 - j): x = 0.5 * (q - 8), so elements 0..15 are -4.0 .. 3.5 and 16..31 are 3.5 .. -4.0.
  BlockQ4_0 b{};
  b.d = 0x3800;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(DType::Q4_0, b);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], -4.0f + 0.5f * static_cast<float>(j)) << j;
    EXPECT_EQ(y[j + 16], 3.5f - 0.5f * static_cast<float>(j)) << j;
  }
}

TEST(QuantBlocks, Q4_1AddsTheMinimum) {
  // d = 0.25, m = -1.0, nibbles as in the Q4_0 case: x = 0.25 * q - 1.
  BlockQ4_1 b{};
  b.d = 0x3400;
  b.m = 0xBC00;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const std::vector<float> y = dequantize_block(DType::Q4_1, b);
  EXPECT_EQ(y[0], -1.0f);
  EXPECT_EQ(y[15], 2.75f);
  EXPECT_EQ(y[16], 2.75f);
  EXPECT_EQ(y[31], -1.0f);
  EXPECT_EQ(y[5], 0.25f);
}

TEST(QuantBlocks, Q5_0TakesTheFifthBitFromQhBitJ) {
  // d = 0.125, element j has level j: low nibbles j & 15 (byte j holds j and j + 16, both with
  // low nibble j), fifth bit set for elements 16..31, i.e. qh = 0xFFFF0000 little-endian.
  // x = 0.125 * (j - 16): -2.0 .. 1.875.
  BlockQ5_0 b{};
  b.d = 0x3000;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | (j << 4));
  const uint8_t qh[4] = {0x00, 0x00, 0xFF, 0xFF};
  std::memcpy(b.qh, qh, 4);
  const std::vector<float> y = dequantize_block(DType::Q5_0, b);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 0.125f * static_cast<float>(j - 16)) << j;
}

TEST(QuantBlocks, Q5_1AddsTheMinimum) {
  // d = 1, m = 0.5, element j has level 31 - j: for j < 16 that is 16 + (15 - j) (fifth bit set,
  // qh = 0x0000FFFF), for j >= 16 it is 15 - (j - 16). x = 31.5 - j.
  BlockQ5_1 b{};
  b.d = 0x3C00;
  b.m = 0x3800;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((15 - j) | ((15 - j) << 4));
  const uint8_t qh[4] = {0xFF, 0xFF, 0x00, 0x00};
  std::memcpy(b.qh, qh, 4);
  const std::vector<float> y = dequantize_block(DType::Q5_1, b);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], 31.5f - static_cast<float>(j)) << j;
}

TEST(QuantBlocks, Q8_0AndQ8_1AreScaledInt8) {
  // d = 2^-7, qs[j] = 8j - 128: x = j/16 - 1. Q8_1's s is ignored by dequantization.
  BlockQ8_0 a{};
  a.d = 0x2000;
  BlockQ8_1 b{};
  b.d = 0x2000;
  b.s = 0x7C00;  // inf: must not leak into the values
  for (int j = 0; j < 32; ++j) {
    a.qs[j] = static_cast<int8_t>(8 * j - 128);
    b.qs[j] = a.qs[j];
  }
  const std::vector<float> ya = dequantize_block(DType::Q8_0, a);
  const std::vector<float> yb = dequantize_block(DType::Q8_1, b);
  for (int j = 0; j < 32; ++j) {
    EXPECT_EQ(ya[j], static_cast<float>(j) / 16 - 1) << j;
    EXPECT_EQ(yb[j], ya[j]) << j;
  }
}

TEST(QuantBlocks, Q2_KScalesMinsAndInterleavedQuarters) {
  // d = 1, dmin = 0.5. Group g (16 elements) has scales[g] = scale | min << 4: 0x12 (scale 2,
  // min 1) everywhere but group 2 with 0x35 (scale 5, min 3). x = d*scale*q - dmin*min.
  // Each half of 128 elements uses 32 bytes; element e of a half sits in byte e % 32 at bit
  // 2 * (e / 32). qs[0] = 0b11'10'01'00 gives elements 0, 32, 64, 96 levels 0, 1, 2, 3;
  // qs[33] = 3 gives element 128 + 1 level 3. All other levels are 0.
  BlockQ2_K b{};
  b.d = 0x3C00;
  b.dmin = 0x3800;
  for (uint8_t& s : b.scales) s = 0x12;
  b.scales[2] = 0x35;
  b.qs[0] = 0xE4;
  b.qs[33] = 0x03;
  const std::vector<float> y = dequantize_block(DType::Q2_K, b);
  EXPECT_EQ(y[0], 2 * 0 - 0.5f);
  EXPECT_EQ(y[32], 5 * 1 - 1.5f);   // group 2
  EXPECT_EQ(y[64], 2 * 2 - 0.5f);   // group 4
  EXPECT_EQ(y[96], 2 * 3 - 0.5f);   // group 6
  EXPECT_EQ(y[129], 2 * 3 - 0.5f);  // group 8
  for (int e : {1, 31, 33, 47, 48, 128, 130, 255}) {
    EXPECT_EQ(y[e], e / 16 == 2 ? -1.5f : -0.5f) << e;
  }
}

TEST(QuantBlocks, Q3_KSignedSixBitScalesAndHighBitMask) {
  // d = 0.5. Group scales (stored value - 32): group 0 stored 33 (+1), group 1 stored 30 (-2),
  // group 9 stored 63 (+31), all others 32 (0). Low 4 bits: byte j % 8, low nibble for j < 8,
  // high for j >= 8: scales[0] = 0x01 (g0 = 1, g8 = 0), scales[1] = 0xFE (g1 = 14, g9 = 15).
  // High 2 bits: byte 8 + j % 4 at bit 2*(j/4): byte 9 = g1:1 | g5:2 << 2 | g9:3 << 4 |
  // g13:2 << 6 = 0xB9, the other three bytes 0b10'10'10'10 = 0xAA.
  // Levels: q = (2 bits of qs) - (hmask bit set ? 0 : 4); element e uses byte 32*(e/128) +
  // e % 32 of qs at bit 2*((e % 128)/32), and bit e/32 of hmask[e % 32]. hmask starts all set.
  //   e = 0:   qs[0] = 3                              -> q = 3,  x = 0.5 * 1 * 3    = 1.5
  //   e = 1:   hmask[1] bit 0 clear                   -> q = -4, x = 0.5 * 1 * -4   = -2
  //   e = 16:  qs[16] = 2, hmask[16] bit 0 clear      -> q = -2, x = 0.5 * -2 * -2  = 2
  //   e = 144: qs[48] = 1, hmask[16] bit 4 clear      -> q = -3, x = 0.5 * 31 * -3  = -46.5
  BlockQ3_K b{};
  b.d = 0x3800;
  const uint8_t scales[12] = {0x01, 0xFE, 0, 0, 0, 0, 0, 0, 0xAA, 0xB9, 0xAA, 0xAA};
  std::memcpy(b.scales, scales, 12);
  for (uint8_t& h : b.hmask) h = 0xFF;
  b.hmask[1] = 0xFE;
  b.hmask[16] = 0xEE;
  b.qs[0] = 3;
  b.qs[16] = 2;
  b.qs[48] = 1;
  int8_t unpacked[16];
  unpack_q3_K_scales(b.scales, unpacked);
  const int8_t expected_scales[16] = {1, -2, 0, 0, 0, 0, 0, 0, 0, 31, 0, 0, 0, 0, 0, 0};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(unpacked[j], expected_scales[j]) << j;
  const std::vector<float> y = dequantize_block(DType::Q3_K, b);
  for (int e = 0; e < 256; ++e) {
    const float want = e == 0 ? 1.5f : e == 1 ? -2.0f : e == 16 ? 2.0f : e == 144 ? -46.5f : 0.0f;
    EXPECT_EQ(y[e], want) << e;
  }
}

// Q4_K/Q5_K scale bytes for (scale, min) per group = (1,0) (2,4) (40,1) (63,63) (5,20) (17,2)
// (33,48) (63,7). Groups 0..3: byte j = scale | (high 2 bits of group j+4's scale) << 6,
// byte j+4 = min | (high 2 bits of group j+4's min) << 6; groups 4..7: byte j+4 = scale & 15 |
// (min & 15) << 4. E.g. byte 1 = 2 | (17 >> 4) << 6 = 0x42, byte 8 = 5 | (20 & 15) << 4 = 0x45.
constexpr uint8_t kK4Scales[12] = {0x01, 0x42, 0xA8, 0xFF, 0x40, 0x04,
                                   0xC1, 0x3F, 0x45, 0x21, 0x01, 0x7F};
constexpr uint8_t kK4Scale[8] = {1, 2, 40, 63, 5, 17, 33, 63};
constexpr uint8_t kK4Min[8] = {0, 4, 1, 63, 20, 2, 48, 7};

TEST(QuantBlocks, GetScaleMinK4UnpacksAllEightGroups) {
  for (int j = 0; j < 8; ++j) {
    uint8_t sc;
    uint8_t m;
    get_scale_min_k4(j, kK4Scales, &sc, &m);
    EXPECT_EQ(sc, kK4Scale[j]) << j;
    EXPECT_EQ(m, kK4Min[j]) << j;
  }
}

TEST(QuantBlocks, Q4_KGroupsOf32WithPackedSixBitScales) {
  // d = 1, dmin = 0.25, x = d*scale*q - dmin*min with group g = e / 32. Chunk c of 64 elements
  // uses qs[32c..32c+31]: the low nibbles are elements 64c + l, the high nibbles 64c + 32 + l.
  //   qs[0] = 0x7F:   e = 0 -> q = 15: 1*15 - 0 = 15;   e = 32 -> q = 7: 2*7 - 1 = 13
  //   qs[101] = 0x90: e = 192 + 32 + 5 = 229 (group 7) -> q = 9: 63*9 - 1.75 = 565.25
  BlockQ4_K b{};
  b.d = 0x3C00;
  b.dmin = 0x3400;
  std::memcpy(b.scales, kK4Scales, 12);
  b.qs[0] = 0x7F;
  b.qs[101] = 0x90;
  const std::vector<float> y = dequantize_block(DType::Q4_K, b);
  for (int e = 0; e < 256; ++e) {
    const float rest = -0.25f * static_cast<float>(kK4Min[e / 32]);
    const float want = e == 0 ? 15.0f : e == 32 ? 13.0f : e == 229 ? 565.25f : rest;
    EXPECT_EQ(y[e], want) << e;
  }
}

TEST(QuantBlocks, Q5_KAddsSixteenFromQhBit2cOr2cPlus1) {
  // As the Q4_K case, plus qh: element 64c + l takes bit 2c of qh[l], element 64c + 32 + l bit
  // 2c + 1.
  //   e = 0:   qs nibble 15, qh[0] bit 0  -> q = 31: 1*31 - 0          = 31
  //   e = 32:  qs nibble 7,  qh[0] bit 1  -> q = 23: 2*23 - 1          = 45
  //   e = 229: qs nibble 9,  qh[5] bit 7  -> q = 25: 63*25 - 1.75      = 1573.25
  //   e = 200: qs nibble 0,  qh[8] bit 6  -> q = 16: 33*16 - 0.25*48   = 516
  BlockQ5_K b{};
  b.d = 0x3C00;
  b.dmin = 0x3400;
  std::memcpy(b.scales, kK4Scales, 12);
  b.qs[0] = 0x7F;
  b.qs[101] = 0x90;
  b.qh[0] = 0x03;
  b.qh[5] = 0x80;
  b.qh[8] = 0x40;
  const std::vector<float> y = dequantize_block(DType::Q5_K, b);
  for (int e = 0; e < 256; ++e) {
    const float rest = -0.25f * static_cast<float>(kK4Min[e / 32]);
    const float want = e == 0     ? 31.0f
                       : e == 32  ? 45.0f
                       : e == 229 ? 1573.25f
                       : e == 200 ? 516.0f
                                  : rest;
    EXPECT_EQ(y[e], want) << e;
  }
}

TEST(QuantBlocks, Q6_KLowNibblesInQlTopBitsInQh) {
  // d = 0.5, int8 group scales: 2 for group 0, -128 for group 2, 3 for group 4, 127 for group
  // 15, 1 elsewhere. x = d * scale * (q - 32). Level 32 (low 4 bits 0, top bits 2) everywhere
  // makes x = 0: ql all 0, qh all 0b10'10'10'10. In each half h of 128, element 128h + 32k + l
  // (k < 4, l < 32) has its low 4 bits in ql[64h + l + 32*(k % 2)] (low nibble for k < 2, high
  // for k >= 2) and its top 2 bits at bit 2k of qh[32h + l]. Changed:
  //   e = 0   (k 0, l 0):  ql[0] = 0x0F, qh[0] = 0xAB -> q = 63: 0.5*2*31      = 31
  //   e = 33  (k 1, l 1):  ql[33] = 0,   qh[1] = 0xA2 -> q = 0:  0.5*-128*-32  = 2048
  //   e = 66  (k 2, l 2):  ql[2] = 0x50, qh[2] = 0x9A -> q = 21: 0.5*3*-11     = -16.5
  //   e = 255 (h 1, k 3, l 31): ql[127] = 0xF0, qh[63] = 0xEA -> q = 63: 0.5*127*31 = 1968.5
  BlockQ6_K b{};
  b.d = 0x3800;
  for (int8_t& s : b.scales) s = 1;
  b.scales[0] = 2;
  b.scales[2] = -128;
  b.scales[4] = 3;
  b.scales[15] = 127;
  for (uint8_t& h : b.qh) h = 0xAA;
  b.ql[0] = 0x0F;
  b.qh[0] = 0xAB;
  b.qh[1] = 0xA2;
  b.ql[2] = 0x50;
  b.qh[2] = 0x9A;
  b.ql[127] = 0xF0;
  b.qh[63] = 0xEA;
  const std::vector<float> y = dequantize_block(DType::Q6_K, b);
  for (int e = 0; e < 256; ++e) {
    const float want = e == 0     ? 31.0f
                       : e == 33  ? 2048.0f
                       : e == 66  ? -16.5f
                       : e == 255 ? 1968.5f
                                  : 0.0f;
    EXPECT_EQ(y[e], want) << e;
  }
}

TEST(QuantBlocks, Q8_KIsAFloatScaleTimesInt8) {
  BlockQ8_K b{};
  b.d = 0.25f;
  for (int j = 0; j < 256; ++j) b.qs[j] = static_cast<int8_t>(j - 128);
  const std::vector<float> y = dequantize_block(DType::Q8_K, b);
  for (int j = 0; j < 256; ++j) EXPECT_EQ(y[j], 0.25f * static_cast<float>(j - 128)) << j;
}

TEST(QuantBlocks, Q8_KBsumsAreSumsOfEachSixteenLevels) {
  const std::vector<float> x = make_data(Dist::kGaussian, 512, 3);
  BlockQ8_K b[2];
  quantize_row_q8_K(x.data(), b, 512);
  for (const BlockQ8_K& blk : b) {
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += blk.qs[16 * g + i];
      EXPECT_EQ(blk.bsums[g], sum) << g;
    }
  }
}

TEST(QuantBlocks, Q4_0QuantizesTheSignedExtremeToLevelZero) {
  // ggml's q4_0: d = max / -8 where max is the value of largest magnitude, with its sign; the
  // level is trunc(x/d + 8.5) (half rounds up) clamped to 15. For x = 0, 1, ..., 15 in
  // elements 0..15, -16 in element 16 and 0 elsewhere: d = 2, -16 -> level 0, 0 -> 8,
  // 1 -> 9, 3 -> trunc(10.0) = 10, 13 -> trunc(15.0) = 15 and 15 -> 16 clamped to 15.
  std::vector<float> x(32, 0.0f);
  for (int j = 0; j < 16; ++j) x[j] = static_cast<float>(j);
  x[16] = -16;
  BlockQ4_0 b;
  quantize_row_q4_0(x.data(), &b, 32);
  EXPECT_EQ(b.d, 0x4000);     // 2.0
  EXPECT_EQ(b.qs[0], 0x08);   // element 0 -> 8, element 16 -> 0
  EXPECT_EQ(b.qs[1], 0x89);   // element 1 -> 9, element 17 -> 8
  EXPECT_EQ(b.qs[3], 0x8A);   // element 3 -> 10
  EXPECT_EQ(b.qs[13], 0x8F);  // element 13 -> 15
  EXPECT_EQ(b.qs[15], 0x8F);  // element 15 -> clamped 15
}

// ---------------------------------------------------------------------------------------------
// Idempotence: for the max-abs formats with a half scale, the dequantized block holds the
// extreme level exactly (127*d, -8*d, -16*d, all exact in float), so requantizing recovers d
// bit for bit and every level lands within rounding of its integer: the bytes repeat. (Not
// Q8_1: its s is computed from the unrounded d, which the second pass sees rounded.)

TEST(Quant, RequantizingDequantizedMaxAbsFormatsGivesTheSameBytes) {
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q5_0}) {
    for (Dist dist : {Dist::kUniform, Dist::kGaussian, Dist::kOutliers}) {
      const std::vector<float> x = make_data(dist, 1024, 5);
      std::vector<uint8_t> q1(row_size(t, 1024));
      std::vector<uint8_t> q2(q1.size());
      std::vector<float> y(1024);
      quantize_row(t, x.data(), q1.data(), 1024);
      dequantize_row(t, q1.data(), y.data(), 1024);
      quantize_row(t, y.data(), q2.data(), 1024);
      EXPECT_EQ(q1, q2) << dtype_name(t) << " distribution " << static_cast<int>(dist);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Plain dtypes.

uint16_t to_f16(float f) {
  uint16_t h;
  quantize_row(DType::F16, &f, &h, 1);
  return h;
}
uint16_t to_bf16(float f) {
  uint16_t h;
  quantize_row(DType::BF16, &f, &h, 1);
  return h;
}
float from_f16(uint16_t h) {
  float f;
  dequantize_row(DType::F16, &h, &f, 1);
  return f;
}
float from_bf16(uint16_t h) {
  float f;
  dequantize_row(DType::BF16, &h, &f, 1);
  return f;
}
float f32(uint32_t bits) { return bits_to_f32(bits); }

TEST(QuantPlain, F16RoundsToNearestEvenAndKeepsSpecials) {
  EXPECT_EQ(to_f16(1.0f), 0x3C00);
  EXPECT_EQ(to_f16(-2.0f), 0xC000);
  EXPECT_EQ(to_f16(-0.0f), 0x8000);
  EXPECT_EQ(to_f16(65504.0f), 0x7BFF);  // largest finite half
  EXPECT_EQ(to_f16(65519.0f), 0x7BFF);  // below the midpoint to 65536
  EXPECT_EQ(to_f16(65520.0f), 0x7C00);  // the midpoint: ties to even, which is infinity
  EXPECT_EQ(to_f16(1e10f), 0x7C00);
  EXPECT_EQ(to_f16(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(to_f16(std::ldexp(1.0f, -25)), 0x0000);         // half of it: tie to even 0
  EXPECT_EQ(to_f16(std::ldexp(3.0f, -26)), 0x0001);         // 0.75 of it rounds up
  EXPECT_EQ(to_f16(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 of it: tie to even 2
  EXPECT_EQ(to_f16(std::ldexp(1023.0f, -24)), 0x03FF);      // largest subnormal
  EXPECT_EQ(to_f16(std::ldexp(1.0f, -14)), 0x0400);         // smallest normal
  EXPECT_EQ(to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie between 1 and 1+2^-10
  EXPECT_EQ(to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);  // tie rounds to the even 2
  EXPECT_EQ(to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
  EXPECT_EQ(to_f16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(to_f16(-std::numeric_limits<float>::infinity()), 0xFC00);
  const uint16_t nan = to_f16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);

  EXPECT_EQ(from_f16(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(from_f16(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(from_f16(0x7BFF), 65504.0f);
  EXPECT_EQ(from_f16(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(from_f16(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(from_f16(0x7E00)));
  EXPECT_TRUE(std::isnan(from_f16(0x7C01)));
  EXPECT_TRUE(std::signbit(from_f16(0x8000)));
}

TEST(QuantPlain, EveryHalfSurvivesARoundTripThroughF32) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = from_f16(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(to_f16(f), h) << std::hex << h;
    const float g = from_bf16(static_cast<uint16_t>(h));
    if (std::isnan(g)) continue;
    ASSERT_EQ(to_bf16(g), h) << std::hex << h;
  }
}

TEST(QuantPlain, Bf16RoundsToNearestEvenAndQuietsNaN) {
  EXPECT_EQ(to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(to_bf16(f32(0x3F808000)), 0x3F80);  // tie between 0x3F80 and 0x3F81: even
  EXPECT_EQ(to_bf16(f32(0x3F818000)), 0x3F82);  // tie between 0x3F81 and 0x3F82: even
  EXPECT_EQ(to_bf16(f32(0x3F808001)), 0x3F81);  // just above the tie
  EXPECT_EQ(to_bf16(f32(0x7F7FFFFF)), 0x7F80);  // the largest float rounds up to infinity
  EXPECT_EQ(to_bf16(f32(0x00080000)), 0x0008);  // float subnormals stay subnormal
  EXPECT_EQ(to_bf16(f32(0x80000000)), 0x8000);
  EXPECT_EQ(to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(to_bf16(f32(0x7F800001)), 0x7FC0);  // signalling NaN becomes quiet, not infinity
  EXPECT_EQ(from_bf16(0x3F80), 1.0f);
  EXPECT_EQ(from_bf16(0x0001), f32(0x00010000));
}

template <typename Int>
Int to_int(DType t, float f) {
  Int v;
  quantize_row(t, &f, &v, 1);
  return v;
}

TEST(QuantPlain, IntegersRoundToNearestEvenAndSaturate) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(to_int<int8_t>(DType::I8, 1.5f), 2);
  EXPECT_EQ(to_int<int8_t>(DType::I8, 2.5f), 2);
  EXPECT_EQ(to_int<int8_t>(DType::I8, -2.5f), -2);
  EXPECT_EQ(to_int<int8_t>(DType::I8, -2.6f), -3);
  EXPECT_EQ(to_int<int8_t>(DType::I8, 127.4f), 127);
  EXPECT_EQ(to_int<int8_t>(DType::I8, 127.5f), 127);
  EXPECT_EQ(to_int<int8_t>(DType::I8, 300.0f), 127);
  EXPECT_EQ(to_int<int8_t>(DType::I8, -128.4f), -128);
  EXPECT_EQ(to_int<int8_t>(DType::I8, -1e30f), -128);
  EXPECT_EQ(to_int<int8_t>(DType::I8, inf), 127);
  EXPECT_EQ(to_int<int8_t>(DType::I8, nan), 0);
  EXPECT_EQ(to_int<int16_t>(DType::I16, 32767.4f), 32767);
  EXPECT_EQ(to_int<int16_t>(DType::I16, 40000.0f), 32767);
  EXPECT_EQ(to_int<int16_t>(DType::I16, -40000.0f), -32768);
  EXPECT_EQ(to_int<int32_t>(DType::I32, 2147483520.0f), 2147483520);  // largest float < 2^31
  EXPECT_EQ(to_int<int32_t>(DType::I32, 2147483648.0f), std::numeric_limits<int32_t>::max());
  EXPECT_EQ(to_int<int32_t>(DType::I32, -2147483648.0f), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(to_int<int32_t>(DType::I32, -inf), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(to_int<int64_t>(DType::I64, std::ldexp(1.0f, 62)), int64_t{1} << 62);
  EXPECT_EQ(to_int<int64_t>(DType::I64, 1e19f), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(to_int<int64_t>(DType::I64, -1e19f), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(to_int<int64_t>(DType::I64, nan), 0);

  const int64_t big[2] = {std::numeric_limits<int64_t>::max(), -3};
  float y[2];
  dequantize_row(DType::I64, big, y, 2);
  EXPECT_EQ(y[0], std::ldexp(1.0f, 63));
  EXPECT_EQ(y[1], -3.0f);
  const int8_t small[2] = {-128, 127};
  dequantize_row(DType::I8, small, y, 2);
  EXPECT_EQ(y[0], -128.0f);
  EXPECT_EQ(y[1], 127.0f);
}

TEST(QuantPlain, F64IsExactOneWayAndNearestTheOther) {
  const float x[2] = {0.1f, -std::ldexp(1.0f, -149)};
  double d[2];
  quantize_row(DType::F64, x, d, 2);
  EXPECT_EQ(d[0], static_cast<double>(0.1f));
  EXPECT_EQ(d[1], -std::ldexp(1.0, -149));
  const double in[2] = {0.1, 1e300};
  float y[2];
  dequantize_row(DType::F64, in, y, 2);
  EXPECT_EQ(y[0], 0.1f);
  EXPECT_EQ(y[1], std::numeric_limits<float>::infinity());
}

// ---------------------------------------------------------------------------------------------
// Golden hashes from llama.cpp's own code: ggml-org/ggml at commit d99724f2
// (ggml/src/ggml-quants.c, Release flags, x86-64), recorded once: for each format, its
// quantize_row_<fmt>_ref on the inputs below and dequantize_row_<fmt> on the result (ggml has no
// dequantize for Q8_1: 0). Values are FNV-1a 64 of the output bytes. The algorithms followed:
//   q4_0/q5_0: max-abs, d = max / -8 (-16);  q4_1/q5_1: min/max, d = (max - min) / 15 (31);
//   q8_0/q8_1: d = amax / 127, roundf;       q8_K: d = max / -127, nearest_int, bsums;
//   q2_K: make_qkx2_quants(16, 3, w = |x|, -0.5, 0.1, 15, mad), 4-bit scales/mins;
//   q3_K: make_q3_quants(16, 4, rmse) + 6-bit signed scales; q6_K: make_qx_quants(16, 32, 1);
//   q4_K/q5_K: make_qkx2_quants(32, 15/31, w = rms + |x|, -1/-0.5, 0.1, 20/15), 6-bit packed.

uint64_t fnv1a(const void* p, size_t n) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= static_cast<const uint8_t*>(p)[i];
    h *= 1099511628211ull;
  }
  return h;
}

// Golden input c: 0 gaussian (seed 7), 1 gaussian with outliers (seed 8), 2 five levels
// {-0.5, -0.25, 0, 0.25, 0.5} (seed 9: ties and exact hits everywhere), 3 gaussian * 1e-3 with
// every third group of 16 zero (seed 10: groups whose scale is 0 keep their first fit).
constexpr int kGoldenN = 32768;

std::vector<float> golden_input(int c) {
  Lcg rng(static_cast<uint64_t>(7 + c));
  std::vector<float> x(kGoldenN);
  for (int i = 0; i < kGoldenN; ++i) {
    float& v = x[i];
    if (c == 0) {
      v = rng.gaussian();
    } else if (c == 1) {
      v = rng.gaussian() * (rng.next() % 64 == 0 ? 30.f : 1.f);
    } else if (c == 2) {
      v = static_cast<float>(rng.next() % 5) * 0.25f - 0.5f;
    } else {
      v = (i / 16) % 3 == 0 ? 0.f : rng.gaussian() * 1e-3f;
    }
  }
  return x;
}

struct Golden {
  DType type;
  struct {
    uint64_t quantized, dequantized;
  } cases[4];
};

// clang-format off
constexpr Golden kGolden[] = {
{DType::Q4_0, {{0x8eb28ee53d7d09efull, 0x072b455c9d034b0aull}, {0x9b160138adeba7d7ull, 0x24ec7f22e12436beull}, {0x1234e4fc9362ce5cull, 0xdf1bcd8c3fb74c4bull}, {0x3b755522303e649bull, 0x4dbacdb661a81106ull}}},
{DType::Q4_1, {{0x5e665ce9d7471504ull, 0x2e080521a7763219ull}, {0x908f613eb2075212ull, 0x2a0d54fac5d16e59ull}, {0xb35838eb0fa0d3eeull, 0xc5264f0223502edbull}, {0xb3ba728d0735b3d6ull, 0xd57d75b879c0beebull}}},
{DType::Q5_0, {{0xe351a3a17af8c66full, 0xe2d722b787e7e740ull}, {0xa0d896cd2fae479bull, 0xd0f3eadb44e6b8adull}, {0xe77cd055fce3db17ull, 0x214be5c1a11b36bbull}, {0x8d0e17639f336beeull, 0xaeba2c48a44025d3ull}}},
{DType::Q5_1, {{0x64ff187b79df6c38ull, 0x0e7de042031eb4c1ull}, {0x43171b5625802a22ull, 0xec930fc78749a9adull}, {0xe480a0be43981090ull, 0xd999543f3c0bdba0ull}, {0xb8278612d9b3177cull, 0x7cfaec4e8867072bull}}},
{DType::Q8_0, {{0x7b274297f100aa0bull, 0xfd8be1ef44f80dd4ull}, {0x7604813172dd38d3ull, 0xbe3d72904d18847full}, {0x899061cb9e1fef7cull, 0x60ca022d2a307ae0ull}, {0xe9d4e8e114524877ull, 0x4940d21be2d02126ull}}},
{DType::Q8_1, {{0xbc66b9de41cc367full, 0}, {0x8b63995915346889ull, 0}, {0x8fa50bb4c75364aaull, 0}, {0x40925ecef7565572ull, 0}}},
{DType::Q2_K, {{0xf0b4e86edfeba420ull, 0x8562768c655be6afull}, {0xdab8c5c109b6b083ull, 0xecfea653dce5c65dull}, {0x301ab0dfdb0be0e6ull, 0x379a193753e64d04ull}, {0x44a91ecd06e06f30ull, 0xc1b96ff70922ef4aull}}},
{DType::Q3_K, {{0xce1b5a0bafe524e7ull, 0xbbd9a343be952a4aull}, {0xdf8ce2a1553b766dull, 0x47cb705cd299a0c8ull}, {0xd8a925c8735319ecull, 0xaf2da968a8c556afull}, {0x877a5de11c75c2f7ull, 0x430434641f0ed9e5ull}}},
{DType::Q4_K, {{0xc621778103e981d3ull, 0xbc1c3d505cbaec4cull}, {0x510d236a273fb25bull, 0x8d653022083a24c6ull}, {0x93120e6cea091bd7ull, 0x46089adf77b1b627ull}, {0xd35569d902a01130ull, 0xfce01baf9ef8f735ull}}},
{DType::Q5_K, {{0x8af376d72ad2d7d4ull, 0xed20ffa6147f9be8ull}, {0x20c59b38ad351a14ull, 0xc81dc646708eed17ull}, {0xa4db984a71610c88ull, 0x4d8a0fdb32bf2489ull}, {0x30548496b041b447ull, 0xfe6f7d0bf87557bcull}}},
{DType::Q6_K, {{0x69abe472c8e949f7ull, 0x24e575f4cbd3347dull}, {0xf3d2fb12d352e6c6ull, 0x86ae085a4035db50ull}, {0x36842929536be804ull, 0xe10439a9eac7a9c3ull}, {0xa2bd4a775221fc92ull, 0x825e9f7ef51bbc05ull}}},
{DType::Q8_K, {{0x296d977dc5ede310ull, 0x7443696593fe437full}, {0xcf373cef7da02aafull, 0x8823e1584fed7dcbull}, {0xa90afe6c5936fb55ull, 0xfea2fb3c1990b728ull}, {0x067377e89d6c767aull, 0xd40f498e0d2c308eull}}},
};
// clang-format on

TEST(QuantGolden, BytesAndValuesMatchLlamaCpp) {
  for (const Golden& g : kGolden) {
    for (int c = 0; c < 4; ++c) {
      const std::vector<float> x = golden_input(c);
      std::vector<uint8_t> q(row_size(g.type, kGoldenN));
      quantize_row(g.type, x.data(), q.data(), kGoldenN);
      EXPECT_EQ(fnv1a(q.data(), q.size()), g.cases[c].quantized)
          << dtype_name(g.type) << " input " << c << ": bytes differ from llama.cpp's";
      if (g.cases[c].dequantized == 0) continue;
      std::vector<float> y(kGoldenN);
      dequantize_row(g.type, q.data(), y.data(), kGoldenN);
      EXPECT_EQ(fnv1a(y.data(), y.size() * sizeof(float)), g.cases[c].dequantized)
          << dtype_name(g.type) << " input " << c << ": values differ from llama.cpp's";
    }
  }
}

}  // namespace
}  // namespace corral::ml::quant
