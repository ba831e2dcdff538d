// AVX2 + FMA + F16C versions of the row primitives (see vec.h). Compiled with those flags only
// for this file; vec.cc calls avx2_table() after checking the processor.
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "backend/cpu/kernels/vec.h"
#include "ml/fp16.h"
#include "ml/quant/blocks.h"

namespace corral::backend::cpu::vec {
namespace {

inline float hsum(__m256 v) {
  __m128 lo = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

inline float hmax(__m256 v) {
  __m128 lo = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_max_ss(lo, _mm_movehdup_ps(lo));
  return _mm_cvtss_f32(lo);
}

// e^x to about 1 ulp: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two so n ln2 is exact
// enough), e^r by a degree-6 polynomial (Cephes expf coefficients), 2^n added to the exponent.
// Below -87.3 the result flushes to 0 (and -inf gives 0); above 88.72 it is +inf.
inline __m256 exp8(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.72283f);
  const __m256 lo = _mm256_set1_ps(-87.33654f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n is in [-126, 128]; build 2^n in two halves so n = 128 does not overflow the exponent.
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 s1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  return y;
}

inline __m256 silu8(__m256 x) {
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), x));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// tanh(y) = 1 - 2 / (e^{2y} + 1): saturates cleanly to +-1 at both ends.
inline __m256 gelu_tanh8(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 x2 = _mm256_mul_ps(x, x);
  const __m256 inner = _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.79788456080286535588f), x),
                                     _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), x2, one));
  const __m256 e = exp8(_mm256_add_ps(inner, inner));
  const __m256 t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(one, t));
}

// erf from erfc(z) = t exp(-z^2 + P(t)), t = 1 / (1 + z/2) (Numerical Recipes' erfcc, relative
// error below 1.2e-7), mirrored for negative arguments.
inline __m256 erf8(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.0f));
  const __m256 z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(0.5f), z, one));
  __m256 p = _mm256_set1_ps(0.17087277f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
  const __m256 erfc = _mm256_mul_ps(t, exp8(_mm256_sub_ps(p, _mm256_mul_ps(z, z))));
  return _mm256_or_ps(_mm256_sub_ps(one, erfc), sign);
}

inline __m256 gelu_erf8(__m256 x) {
  const __m256 e = erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.70710678118654752440f)));
  return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x),
                       _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

inline __m256 gelu_quick8(__m256 x) {
  const __m256 e = exp8(_mm256_mul_ps(x, _mm256_set1_ps(-1.702f)));
  return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

inline __m256 load_h8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Applies f to 8 lanes at a time; the last n % 8 go through a zero-padded copy, so the tail
// sees exactly the same arithmetic as the body.
template <class F>
inline void map1(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    float buf[8] = {};
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(buf, f(_mm256_loadu_ps(buf)));
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
}

template <class F>
inline void map2(const float* a, const float* b, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  }
  if (i < n) {
    float ba[8] = {}, bb[8] = {};
    std::memcpy(ba, a + i, (n - i) * sizeof(float));
    std::memcpy(bb, b + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(ba, f(_mm256_loadu_ps(ba), _mm256_loadu_ps(bb)));
    std::memcpy(y + i, ba, (n - i) * sizeof(float));
  }
}

void add(const float* a, const float* b, float* y, int64_t n) {
  map2(a, b, y, n, [](__m256 u, __m256 v) { return _mm256_add_ps(u, v); });
}
void sub(const float* a, const float* b, float* y, int64_t n) {
  map2(a, b, y, n, [](__m256 u, __m256 v) { return _mm256_sub_ps(u, v); });
}
void mul(const float* a, const float* b, float* y, int64_t n) {
  map2(a, b, y, n, [](__m256 u, __m256 v) { return _mm256_mul_ps(u, v); });
}
void div(const float* a, const float* b, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_div_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  }
  for (; i < n; ++i) y[i] = a[i] / b[i];  // no zero padding: 0/0 would be harmless, but exact
}
void scale(const float* x, float* y, int64_t n, float s, float b) {
  const __m256 vs = _mm256_set1_ps(s), vb = _mm256_set1_ps(b);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(_mm256_loadu_ps(x + i), vs, vb));
  }
  for (; i < n; ++i) y[i] = std::fma(x[i], s, b);
}
void silu(const float* x, float* y, int64_t n) { map1(x, y, n, silu8); }
void swiglu(const float* g, const float* u, float* y, int64_t n) {
  map2(g, u, y, n, [](__m256 a, __m256 b) { return _mm256_mul_ps(silu8(a), b); });
}
void gelu_tanh(const float* x, float* y, int64_t n) { map1(x, y, n, gelu_tanh8); }
void gelu_erf(const float* x, float* y, int64_t n) { map1(x, y, n, gelu_erf8); }
void gelu_quick(const float* x, float* y, int64_t n) { map1(x, y, n, gelu_quick8); }

float sum(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += x[i];
  return s;
}
float sum_squares(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_fmadd_ps(u, u, a0);
    a1 = _mm256_fmadd_ps(v, v, a1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 u = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(u, u, a0);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}
float max(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  float r = hmax(m);
  for (; i < n; ++i) r = x[i] > r ? x[i] : r;
  return r;
}
float exp_sum(const float* x, float* y, int64_t n, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(y + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  float s = hsum(acc);
  if (i < n) {
    float buf[8];
    for (int j = 0; j < 8; ++j) buf[j] = -INFINITY;
    std::memcpy(buf, x + i, (n - i) * sizeof(float));
    _mm256_storeu_ps(buf, exp8(_mm256_sub_ps(_mm256_loadu_ps(buf), vm)));
    for (int64_t j = 0; j < n - i; ++j) s += buf[j];
    std::memcpy(y + i, buf, (n - i) * sizeof(float));
  }
  return s;
}
float dot(const float* a, const float* b, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), a0);
  }
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}
float dot_f16(const uint16_t* a, const float* b, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(load_h8(a + i), _mm256_loadu_ps(b + i), a0);
    a1 = _mm256_fmadd_ps(load_h8(a + i + 8), _mm256_loadu_ps(b + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(load_h8(a + i), _mm256_loadu_ps(b + i), a0);
  float s = hsum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += ml::fp16_to_fp32(a[i]) * b[i];
  return s;
}
void axpy(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * x[i];
}
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_h8(x + i), _mm256_loadu_ps(y + i)));
  }
  for (; i < n; ++i) y[i] += a * ml::fp16_to_fp32(x[i]);
}
void f16_to_f32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_h8(x + i));
  for (; i < n; ++i) y[i] = ml::fp16_to_fp32(x[i]);
}
void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), h);
  }
  for (; i < n; ++i) y[i] = ml::fp32_to_fp16(x[i]);
}
void bf16_to_f32(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i)));
    _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; ++i) y[i] = ml::bf16_to_fp32(x[i]);
}
void f32_to_bf16(const float* x, uint16_t* y, int64_t n) {
  // Round to nearest even on the integer bits; NaNs stay quiet NaNs (as ml::fp32_to_bf16).
  int64_t i = 0;
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  const __m256i inf = _mm256_set1_epi32(0x7f800000);
  for (; i + 8 <= n; i += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb)), 16);
    const __m256i nan = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(64));
    const __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs_mask), inf);
    const __m256i r = _mm256_blendv_epi8(rounded, nan, is_nan);
    // Pack the low 16 bits of the eight lanes.
    const __m256i packed =
        _mm256_packus_epi32(_mm256_and_si256(r, _mm256_set1_epi32(0xffff)), _mm256_setzero_si256());
    const __m256i ordered = _mm256_permute4x64_epi64(packed, 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(ordered));
  }
  for (; i < n; ++i) y[i] = ml::fp32_to_bf16(x[i]);
}
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) { return load_h8(p); }
inline float to_f32(float x) { return x; }
inline float to_f32(uint16_t x) { return ml::fp16_to_fp32(x); }

// Four rows at a time, one accumulator each: four independent FMA chains hide the latency, q is
// loaded once per four rows, and one transposing reduction yields all four sums.
template <class T>
void dot_rows_t(const void* rows, size_t stride, int64_t n_rows, const float* q, int64_t d,
                float* out) {
  const char* base = static_cast<const char*>(rows);
  const int64_t d8 = d / 8 * 8;
  int64_t j = 0;
  if (d == 8) {
    // Rows of one vector (small heads): eight products, then one transposing reduction gives
    // the eight sums in order.
    const __m256 vq = _mm256_loadu_ps(q);
    for (; j + 8 <= n_rows; j += 8) {
      __m256 p[8];
      for (int u = 0; u < 8; ++u) {
        p[u] = _mm256_mul_ps(load8(reinterpret_cast<const T*>(base + (j + u) * stride)), vq);
      }
      // hadd(hadd(p0, p1), hadd(p2, p3)): lane l of the low half holds row l's low-half sum and
      // lane l of the high half its high-half sum (rows 0..3); rows 4..7 alike.
      const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(p[0], p[1]), _mm256_hadd_ps(p[2], p[3]));
      const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(p[4], p[5]), _mm256_hadd_ps(p[6], p[7]));
      const __m256 lo = _mm256_permute2f128_ps(h0, h1, 0x20);
      const __m256 hi = _mm256_permute2f128_ps(h0, h1, 0x31);
      _mm256_storeu_ps(out + j, _mm256_add_ps(lo, hi));
    }
  }
  for (; j + 4 <= n_rows; j += 4) {
    const T* r0 = reinterpret_cast<const T*>(base + j * stride);
    const T* r1 = reinterpret_cast<const T*>(base + (j + 1) * stride);
    const T* r2 = reinterpret_cast<const T*>(base + (j + 2) * stride);
    const T* r3 = reinterpret_cast<const T*>(base + (j + 3) * stride);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
    for (int64_t i = 0; i < d8; i += 8) {
      const __m256 vq = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(load8(r0 + i), vq, a0);
      a1 = _mm256_fmadd_ps(load8(r1 + i), vq, a1);
      a2 = _mm256_fmadd_ps(load8(r2 + i), vq, a2);
      a3 = _mm256_fmadd_ps(load8(r3 + i), vq, a3);
    }
    // hadd pairs up the rows; adding the two 128-bit halves finishes [s0, s1, s2, s3].
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    __m128 sums = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    if (d8 < d) {
      float tail[4] = {0, 0, 0, 0};
      for (int64_t i = d8; i < d; ++i) {
        tail[0] += to_f32(r0[i]) * q[i];
        tail[1] += to_f32(r1[i]) * q[i];
        tail[2] += to_f32(r2[i]) * q[i];
        tail[3] += to_f32(r3[i]) * q[i];
      }
      sums = _mm_add_ps(sums, _mm_loadu_ps(tail));
    }
    _mm_storeu_ps(out + j, sums);
  }
  for (; j < n_rows; ++j) {
    const T* r = reinterpret_cast<const T*>(base + j * stride);
    __m256 a = _mm256_setzero_ps();
    for (int64_t i = 0; i < d8; i += 8)
      a = _mm256_fmadd_ps(load8(r + i), _mm256_loadu_ps(q + i), a);
    float sum = hsum(a);
    for (int64_t i = d8; i < d; ++i) sum += to_f32(r[i]) * q[i];
    out[j] = sum;
  }
}

// The accumulator stays in registers, 64 floats at a time, while the tile's rows stream past:
// no load/store of acc per row.
template <class T>
void acc_rows_t(const void* rows, size_t stride, int64_t n_rows, const float* w, int64_t d,
                float* acc) {
  const char* base = static_cast<const char*>(rows);
  int64_t i = 0;
  for (; i + 64 <= d; i += 64) {
    __m256 a[8];
    for (int k = 0; k < 8; ++k) a[k] = _mm256_loadu_ps(acc + i + 8 * k);
    for (int64_t j = 0; j < n_rows; ++j) {
      if (w[j] == 0.0f) continue;
      const T* r = reinterpret_cast<const T*>(base + j * stride) + i;
      const __m256 vw = _mm256_set1_ps(w[j]);
      for (int k = 0; k < 8; ++k) a[k] = _mm256_fmadd_ps(vw, load8(r + 8 * k), a[k]);
    }
    for (int k = 0; k < 8; ++k) _mm256_storeu_ps(acc + i + 8 * k, a[k]);
  }
  for (; i + 8 <= d; i += 8) {
    // Short rows (small heads): four sums in turn, or each row would wait on the latency of the
    // previous row's FMA.
    __m256 a[4] = {_mm256_loadu_ps(acc + i), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
    int64_t j = 0;
    for (; j + 4 <= n_rows; j += 4) {
      // A zero weight skips its row (a masked cell may hold anything, even inf or NaN).
      for (int u = 0; u < 4; ++u) {
        if (w[j + u] == 0.0f) continue;
        const T* r = reinterpret_cast<const T*>(base + (j + u) * stride) + i;
        a[u] = _mm256_fmadd_ps(_mm256_set1_ps(w[j + u]), load8(r), a[u]);
      }
    }
    for (; j < n_rows; ++j) {
      if (w[j] == 0.0f) continue;
      const T* r = reinterpret_cast<const T*>(base + j * stride) + i;
      a[0] = _mm256_fmadd_ps(_mm256_set1_ps(w[j]), load8(r), a[0]);
    }
    _mm256_storeu_ps(acc + i, _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
  }
  for (; i < d; ++i) {
    float a = acc[i];
    for (int64_t j = 0; j < n_rows; ++j) {
      if (w[j] == 0.0f) continue;
      a += w[j] * to_f32(reinterpret_cast<const T*>(base + j * stride)[i]);
    }
    acc[i] = a;
  }
}

// q8_0 as the reference computes it: d = amax / 127, q = roundf(x * (1 / d)). roundf rounds
// halves away from zero, which no AVX rounding mode does, so it is rebuilt from truncation:
// q = trunc(v) + sign(v) when |v - trunc(v)| >= 0.5 (v - trunc(v) is exact).
void quantize_q8_0(const float* x, void* y, int64_t n) {
  auto* out = static_cast<ml::quant::BlockQ8_0*>(y);
  const __m256 sign_bit = _mm256_set1_ps(-0.0f);
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign_bit, v[k]));
    }
    const float d = hmax(amax) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[b].d = ml::fp32_to_fp16(d);
    const __m256 vid = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 s = _mm256_mul_ps(v[k], vid);
      const __m256 t = _mm256_round_ps(s, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 frac = _mm256_andnot_ps(sign_bit, _mm256_sub_ps(s, t));
      const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
      const __m256 step = _mm256_or_ps(_mm256_and_ps(s, sign_bit), _mm256_set1_ps(1.0f));
      q[k] = _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, step)));
    }
    // Pack 4 x 8 int32 to 32 int8; the packs interleave 128-bit lanes, the permute undoes it.
    const __m256i p01 = _mm256_packs_epi32(q[0], q[1]);
    const __m256i p23 = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p = _mm256_packs_epi16(p01, p23);
    const __m256i ordered =
        _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].qs), ordered);
  }
}

void rotate_halves(const float* x, float* y, const float* c, const float* s, int64_t n,
                   int64_t half) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + half);
    const __m256 vc = _mm256_loadu_ps(c + i), vs = _mm256_loadu_ps(s + i);
    _mm256_storeu_ps(y + i, _mm256_fmsub_ps(x0, vc, _mm256_mul_ps(x1, vs)));
    _mm256_storeu_ps(y + i + half, _mm256_fmadd_ps(x0, vs, _mm256_mul_ps(x1, vc)));
  }
  for (; i < n; ++i) {
    const float x0 = x[i], x1 = x[i + half];
    y[i] = x0 * c[i] - x1 * s[i];
    y[i + half] = x0 * s[i] + x1 * c[i];
  }
}
void rotate_pairs(const float* x, float* y, const float* c, const float* s, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256 v = _mm256_loadu_ps(x + 2 * i);  // x0 x1 x0' x1' ...
    const __m128 c4 = _mm_loadu_ps(c + i), s4 = _mm_loadu_ps(s + i);
    // Duplicate each pair's cos/sin into both lanes of the pair.
    const __m256 vc = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
    const __m256 vs = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
    const __m256 swapped = _mm256_permute_ps(v, 0xB1);  // x1 x0 ...
    // even lanes: x0 c - x1 s; odd lanes: x1 c + x0 s.
    _mm256_storeu_ps(y + 2 * i, _mm256_fmaddsub_ps(v, vc, _mm256_mul_ps(swapped, vs)));
  }
  for (; i < n; ++i) {
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    y[2 * i] = x0 * c[i] - x1 * s[i];
    y[2 * i + 1] = x0 * s[i] + x1 * c[i];
  }
}

constexpr Ops kAvx2 = {
    .name = "avx2",
    .add = add,
    .sub = sub,
    .mul = mul,
    .div = div,
    .scale = scale,
    .silu = silu,
    .swiglu = swiglu,
    .gelu_tanh = gelu_tanh,
    .gelu_erf = gelu_erf,
    .gelu_quick = gelu_quick,
    .sum = sum,
    .sum_squares = sum_squares,
    .max = max,
    .exp_sum = exp_sum,
    .dot = dot,
    .dot_f16 = dot_f16,
    .axpy = axpy,
    .axpy_f16 = axpy_f16,
    .f16_to_f32 = f16_to_f32,
    .f32_to_f16 = f32_to_f16,
    .bf16_to_f32 = bf16_to_f32,
    .f32_to_bf16 = f32_to_bf16,
    .dot_rows = dot_rows_t<float>,
    .dot_rows_f16 = dot_rows_t<uint16_t>,
    .acc_rows = acc_rows_t<float>,
    .acc_rows_f16 = acc_rows_t<uint16_t>,
    .quantize_q8_0 = quantize_q8_0,
    .rotate_halves = rotate_halves,
    .rotate_pairs = rotate_pairs,
};

}  // namespace

const Ops& avx2_table() { return kAvx2; }

}  // namespace corral::backend::cpu::vec
