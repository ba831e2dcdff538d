// Scalar matmul kernels for every weight dtype: the fallback on CPUs without AVX2 and for the
// formats that have no SIMD kernel. Each vec_dot computes the dot product of one weight row with
// one activation row of the weight's vec-dot type the way ggml's scalar code does (integer sums
// per block, scaled once per block), so results match to rounding.
#include <cstring>

#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/fp16.h"
#include "ml/quant/blocks.h"
#include "ml/quant/formats.h"

namespace corral::backend::cpu::simd {
namespace {

using ml::DType;
using ml::fp16_to_fp32;
namespace q = ml::quant;

using VecDot = float (*)(int64_t k, const void* w, const void* x);

float dot_f32(int64_t k, const void* w, const void* x) {
  const float* a = static_cast<const float*>(w);
  const float* b = static_cast<const float*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k; ++i) s += a[i] * b[i];
  return s;
}

float dot_f16(int64_t k, const void* w, const void* x) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const float* b = static_cast<const float*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k; ++i) s += fp16_to_fp32(a[i]) * b[i];
  return s;
}

float dot_bf16(int64_t k, const void* w, const void* x) {
  const uint16_t* a = static_cast<const uint16_t*>(w);
  const float* b = static_cast<const float*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k; ++i) s += ml::bf16_to_fp32(a[i]) * b[i];
  return s;
}

float dot_q4_0(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const q::BlockQ4_0*>(w);
  const auto* b = static_cast<const q::BlockQ8_0*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < q::kQK / 2; ++j) {
      sumi += ((a[i].qs[j] & 0x0F) - 8) * b[i].qs[j];
      sumi += ((a[i].qs[j] >> 4) - 8) * b[i].qs[j + q::kQK / 2];
    }
    s += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  return s;
}

float dot_q4_1(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const q::BlockQ4_1*>(w);
  const auto* b = static_cast<const q::BlockQ8_1*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < q::kQK / 2; ++j) {
      sumi += (a[i].qs[j] & 0x0F) * b[i].qs[j];
      sumi += (a[i].qs[j] >> 4) * b[i].qs[j + q::kQK / 2];
    }
    // x = d*q + m, so sum(x*y) = d*dy*sum(q*qy) + m*(dy*sum(qy)) and dy*sum(qy) is stored in s.
    s += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d) +
         fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
  }
  return s;
}

// The 5-bit value of element j of a Q5_0/Q5_1 block (j < 32).
inline int q5_value(const uint8_t* qs, uint32_t qh, int j) {
  const int nibble = j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
  return nibble | static_cast<int>((qh >> j) & 1) << 4;
}

float dot_q5_0(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const q::BlockQ5_0*>(w);
  const auto* b = static_cast<const q::BlockQ8_0*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQK; ++i) {
    uint32_t qh;
    std::memcpy(&qh, a[i].qh, 4);
    int sumi = 0;
    for (int j = 0; j < q::kQK; ++j) sumi += (q5_value(a[i].qs, qh, j) - 16) * b[i].qs[j];
    s += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  return s;
}

float dot_q5_1(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const q::BlockQ5_1*>(w);
  const auto* b = static_cast<const q::BlockQ8_1*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQK; ++i) {
    uint32_t qh;
    std::memcpy(&qh, a[i].qh, 4);
    int sumi = 0;
    for (int j = 0; j < q::kQK; ++j) sumi += q5_value(a[i].qs, qh, j) * b[i].qs[j];
    s += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d) +
         fp16_to_fp32(a[i].m) * fp16_to_fp32(b[i].s);
  }
  return s;
}

float dot_q8_0(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const q::BlockQ8_0*>(w);
  const auto* b = static_cast<const q::BlockQ8_0*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < q::kQK; ++j) sumi += a[i].qs[j] * b[i].qs[j];
    s += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  return s;
}

// Q8_1 weights (ggml has no kernel for them) against Q8_0 activations: the sum field is not
// needed because the weights have no offset.
float dot_q8_1(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const q::BlockQ8_1*>(w);
  const auto* b = static_cast<const q::BlockQ8_0*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQK; ++i) {
    int sumi = 0;
    for (int j = 0; j < q::kQK; ++j) sumi += a[i].qs[j] * b[i].qs[j];
    s += static_cast<float>(sumi) * fp16_to_fp32(a[i].d) * fp16_to_fp32(b[i].d);
  }
  return s;
}

// A K-format super-block decoded to one shape: element e is dq*sc[e/16]*q[e] - dm*mn[e/16], with
// q unsigned. Every K format fits it (signed formats fold their offset into mn), and its dot
// with a Q8_K block needs only integer sums and the block's precomputed sums of 16 (bsums).
struct KDecoded {
  uint8_t q[q::kQKK];
  int sc[q::kQKK / 16];
  int mn[q::kQKK / 16];
  float dq, dm;
};

float dot_decoded(const KDecoded& a, const q::BlockQ8_K& b) {
  int sumi = 0, summ = 0;
  for (int g = 0; g < q::kQKK / 16; ++g) {
    int s = 0;
    for (int l = 0; l < 16; ++l) s += a.q[g * 16 + l] * b.qs[g * 16 + l];
    sumi += a.sc[g] * s;
    summ += a.mn[g] * b.bsums[g];
  }
  return b.d * (a.dq * static_cast<float>(sumi) - a.dm * static_cast<float>(summ));
}

// The 6-bit scale and min of group j (< 8) of a Q4_K/Q5_K block's 12 packed bytes.
inline void k4_scale_min(int j, const uint8_t* s, int& sc, int& mn) {
  if (j < 4) {
    sc = s[j] & 63;
    mn = s[j + 4] & 63;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
    mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void decode_q2_K(const q::BlockQ2_K& b, KDecoded& o) {
  o.dq = fp16_to_fp32(b.d);
  o.dm = fp16_to_fp32(b.dmin);
  for (int g = 0; g < 16; ++g) {
    o.sc[g] = b.scales[g] & 0x0F;
    o.mn[g] = b.scales[g] >> 4;
  }
  // Each 128 elements use 32 bytes of qs: four 32-element runs at shifts 0, 2, 4, 6.
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 4; ++j) {
      for (int l = 0; l < 32; ++l) o.q[n * 128 + j * 32 + l] = (b.qs[n * 32 + l] >> (2 * j)) & 3;
    }
  }
}

void decode_q3_K(const q::BlockQ3_K& b, KDecoded& o) {
  // 16 6-bit scales: low 4 bits in bytes 0..7 (two per byte), high 2 bits in bytes 8..11.
  for (int g = 0; g < 16; ++g) {
    const int low = g < 8 ? (b.scales[g] & 0x0F) : (b.scales[g - 8] >> 4);
    const int high = (b.scales[8 + (g % 4)] >> (2 * (g / 4))) & 3;
    o.sc[g] = (low | high << 4) - 32;
    o.mn[g] = o.sc[g];  // the value is sc * (q - 4) with q = 2 low bits + 4 * high bit
  }
  o.dq = fp16_to_fp32(b.d);
  o.dm = 4.0f * o.dq;
  for (int n = 0; n < 2; ++n) {
    for (int j = 0; j < 4; ++j) {
      const int bit = n * 4 + j;  // hmask bit of this 32-element run
      for (int l = 0; l < 32; ++l) {
        const int low = (b.qs[n * 32 + l] >> (2 * j)) & 3;
        const int high = (b.hmask[l] >> bit) & 1;
        o.q[n * 128 + j * 32 + l] = static_cast<uint8_t>(low + 4 * high);
      }
    }
  }
}

void decode_q4_K(const q::BlockQ4_K& b, KDecoded& o) {
  o.dq = fp16_to_fp32(b.d);
  o.dm = fp16_to_fp32(b.dmin);
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    k4_scale_min(j, b.scales, sc, mn);
    o.sc[2 * j] = o.sc[2 * j + 1] = sc;
    o.mn[2 * j] = o.mn[2 * j + 1] = mn;
  }
  // Each 64 elements: 32 bytes, low nibbles first then high nibbles.
  for (int j = 0; j < 4; ++j) {
    for (int l = 0; l < 32; ++l) {
      o.q[j * 64 + l] = b.qs[j * 32 + l] & 0x0F;
      o.q[j * 64 + 32 + l] = b.qs[j * 32 + l] >> 4;
    }
  }
}

void decode_q5_K(const q::BlockQ5_K& b, KDecoded& o) {
  o.dq = fp16_to_fp32(b.d);
  o.dm = fp16_to_fp32(b.dmin);
  for (int j = 0; j < 8; ++j) {
    int sc, mn;
    k4_scale_min(j, b.scales, sc, mn);
    o.sc[2 * j] = o.sc[2 * j + 1] = sc;
    o.mn[2 * j] = o.mn[2 * j + 1] = mn;
  }
  // As Q4_K, with bit (2j) of qh[l] the fifth bit of the low-nibble run and bit (2j+1) of the
  // high-nibble run.
  for (int j = 0; j < 4; ++j) {
    for (int l = 0; l < 32; ++l) {
      o.q[j * 64 + l] = (b.qs[j * 32 + l] & 0x0F) | (((b.qh[l] >> (2 * j)) & 1) << 4);
      o.q[j * 64 + 32 + l] = (b.qs[j * 32 + l] >> 4) | (((b.qh[l] >> (2 * j + 1)) & 1) << 4);
    }
  }
}

void decode_q6_K(const q::BlockQ6_K& b, KDecoded& o) {
  o.dq = fp16_to_fp32(b.d);
  o.dm = 32.0f * o.dq;  // the value is sc * (q - 32)
  for (int g = 0; g < 16; ++g) o.sc[g] = o.mn[g] = b.scales[g];
  // Each 128 elements: 64 bytes of low nibbles (runs 0,1 low nibbles; runs 2,3 high nibbles)
  // and 32 bytes of high 2-bit pairs (run j at shift 2j).
  for (int n = 0; n < 2; ++n) {
    const uint8_t* ql = b.ql + n * 64;
    const uint8_t* qh = b.qh + n * 32;
    for (int l = 0; l < 32; ++l) {
      uint8_t* out = o.q + n * 128 + l;
      out[0] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
      out[32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
      out[64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
      out[96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
    }
  }
}

template <class Block, void (*decode)(const Block&, KDecoded&)>
float dot_k(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const Block*>(w);
  const auto* b = static_cast<const q::BlockQ8_K*>(x);
  KDecoded dec;
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQKK; ++i) {
    decode(a[i], dec);
    s += dot_decoded(dec, b[i]);
  }
  return s;
}

float dot_q8_K(int64_t k, const void* w, const void* x) {
  const auto* a = static_cast<const q::BlockQ8_K*>(w);
  const auto* b = static_cast<const q::BlockQ8_K*>(x);
  float s = 0.0f;
  for (int64_t i = 0; i < k / q::kQKK; ++i) {
    int sumi = 0;
    for (int j = 0; j < q::kQKK; ++j) sumi += a[i].qs[j] * b[i].qs[j];
    s += a[i].d * b[i].d * static_cast<float>(sumi);
  }
  return s;
}

template <VecDot dot>
void gemm(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out, size_t ldo,
          int nr, int nc) {
  const auto* wb = static_cast<const unsigned char*>(w);
  const auto* xb = static_cast<const unsigned char*>(x);
  for (int c = 0; c < nc; ++c) {
    for (int r = 0; r < nr; ++r) out[c * ldo + r] = dot(k, wb + r * ldw, xb + c * ldx);
  }
}

const MatMulKernels kF32{DType::F32, nullptr, gemm<dot_f32>};
const MatMulKernels kF16{DType::F32, nullptr, gemm<dot_f16>};
const MatMulKernels kBF16{DType::F32, nullptr, gemm<dot_bf16>};
const MatMulKernels kQ4_0{DType::Q8_0, quantize_row_q8_0_scalar, gemm<dot_q4_0>};
const MatMulKernels kQ4_1{DType::Q8_1, quantize_row_q8_1_scalar, gemm<dot_q4_1>};
const MatMulKernels kQ5_0{DType::Q8_0, quantize_row_q8_0_scalar, gemm<dot_q5_0>};
const MatMulKernels kQ5_1{DType::Q8_1, quantize_row_q8_1_scalar, gemm<dot_q5_1>};
const MatMulKernels kQ8_0{DType::Q8_0, quantize_row_q8_0_scalar, gemm<dot_q8_0>};
const MatMulKernels kQ8_1{DType::Q8_0, quantize_row_q8_0_scalar, gemm<dot_q8_1>};
const MatMulKernels kQ2_K{DType::Q8_K, quantize_row_q8_K_scalar,
                          gemm<dot_k<q::BlockQ2_K, decode_q2_K>>};
const MatMulKernels kQ3_K{DType::Q8_K, quantize_row_q8_K_scalar,
                          gemm<dot_k<q::BlockQ3_K, decode_q3_K>>};
const MatMulKernels kQ4_K{DType::Q8_K, quantize_row_q8_K_scalar,
                          gemm<dot_k<q::BlockQ4_K, decode_q4_K>>};
const MatMulKernels kQ5_K{DType::Q8_K, quantize_row_q8_K_scalar,
                          gemm<dot_k<q::BlockQ5_K, decode_q5_K>>};
const MatMulKernels kQ6_K{DType::Q8_K, quantize_row_q8_K_scalar,
                          gemm<dot_k<q::BlockQ6_K, decode_q6_K>>};
const MatMulKernels kQ8_K{DType::Q8_K, quantize_row_q8_K_scalar, gemm<dot_q8_K>};

}  // namespace

// The scalar activation quantizers are the reference ones.
void quantize_row_q8_0_scalar(const float* x, void* y, int64_t k) {
  q::quantize_row_q8_0(x, static_cast<q::BlockQ8_0*>(y), k);
}
void quantize_row_q8_1_scalar(const float* x, void* y, int64_t k) {
  q::quantize_row_q8_1(x, static_cast<q::BlockQ8_1*>(y), k);
}
void quantize_row_q8_K_scalar(const float* x, void* y, int64_t k) {
  q::quantize_row_q8_K(x, static_cast<q::BlockQ8_K*>(y), k);
}

const MatMulKernels* scalar_kernels(DType w) {
  switch (w) {
    case DType::F32:
      return &kF32;
    case DType::F16:
      return &kF16;
    case DType::BF16:
      return &kBF16;
    case DType::Q4_0:
      return &kQ4_0;
    case DType::Q4_1:
      return &kQ4_1;
    case DType::Q5_0:
      return &kQ5_0;
    case DType::Q5_1:
      return &kQ5_1;
    case DType::Q8_0:
      return &kQ8_0;
    case DType::Q8_1:
      return &kQ8_1;
    case DType::Q2_K:
      return &kQ2_K;
    case DType::Q3_K:
      return &kQ3_K;
    case DType::Q4_K:
      return &kQ4_K;
    case DType::Q5_K:
      return &kQ5_K;
    case DType::Q6_K:
      return &kQ6_K;
    case DType::Q8_K:
      return &kQ8_K;
    default:
      return nullptr;
  }
}

}  // namespace corral::backend::cpu::simd
