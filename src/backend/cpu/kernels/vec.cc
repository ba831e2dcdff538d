#include "backend/cpu/kernels/vec.h"

#include <cmath>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/kernels/convert.h"
#include "ml/fp16.h"

namespace corral::backend::cpu::vec {

// Defined in vec_avx2.cc (compiled with -mavx2 -mfma -mf16c); only called after the processor
// was checked.
const Ops& avx2_table();

namespace {

constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
constexpr float kGeluCoef = 0.044715f;
constexpr float kSqrtHalf = 0.70710678118654752440084436210484f;
constexpr float kGeluQuickCoef = 1.702f;

void add(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}
void sub(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
}
void mul(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}
void div(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] / b[i];
}
void scale(const float* x, float* y, int64_t n, float s, float b) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * s + b;
}
float silu1(float x) { return x / (1.0f + std::exp(-x)); }
void silu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu1(x[i]);
}
void swiglu(const float* g, const float* u, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = silu1(g[i]) * u[i];
}
void gelu_tanh(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    y[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kGeluCoef * v * v)));
  }
}
void gelu_erf(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * kSqrtHalf));
}
void gelu_quick(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::exp(-kGeluQuickCoef * x[i]));
}
float sum(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return static_cast<float>(s);
}
float sum_squares(const float* x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return static_cast<float>(s);
}
float max(const float* x, int64_t n) {
  float m = -INFINITY;
  for (int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}
float exp_sum(const float* x, float* y, int64_t n, float m) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) {
    y[i] = std::exp(x[i] - m);
    s += y[i];
  }
  return static_cast<float>(s);
}
float dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(s);
}
float dot_f16(const uint16_t* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(ml::fp16_to_fp32(a[i])) * b[i];
  return static_cast<float>(s);
}
void axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}
void axpy_f16(float a, const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * ml::fp16_to_fp32(x[i]);
}
void f16_to_f32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = ml::fp16_to_fp32(x[i]);
}
void f32_to_f16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = ml::fp32_to_fp16(x[i]);
}
void bf16_to_f32(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = ml::bf16_to_fp32(x[i]);
}
void f32_to_bf16(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = ml::fp32_to_bf16(x[i]);
}
template <bool kHalf>
void dot_rows_t(const void* rows, size_t stride, int64_t n_rows, const float* q, int64_t d,
                float* out) {
  for (int64_t j = 0; j < n_rows; ++j) {
    const char* r = static_cast<const char*>(rows) + j * stride;
    out[j] = kHalf ? dot_f16(reinterpret_cast<const uint16_t*>(r), q, d)
                   : dot(reinterpret_cast<const float*>(r), q, d);
  }
}
template <bool kHalf>
void acc_rows_t(const void* rows, size_t stride, int64_t n_rows, const float* w, int64_t d,
                float* acc) {
  for (int64_t j = 0; j < n_rows; ++j) {
    if (w[j] == 0.0f) continue;
    const char* r = static_cast<const char*>(rows) + j * stride;
    if (kHalf) {
      axpy_f16(w[j], reinterpret_cast<const uint16_t*>(r), acc, d);
    } else {
      axpy(w[j], reinterpret_cast<const float*>(r), acc, d);
    }
  }
}

void rotate_halves(const float* x, float* y, const float* c, const float* s, int64_t n,
                   int64_t half) {
  for (int64_t i = 0; i < n; ++i) {
    const float x0 = x[i], x1 = x[i + half];
    y[i] = x0 * c[i] - x1 * s[i];
    y[i + half] = x0 * s[i] + x1 * c[i];
  }
}
void rotate_pairs(const float* x, float* y, const float* c, const float* s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    y[2 * i] = x0 * c[i] - x1 * s[i];
    y[2 * i + 1] = x0 * s[i] + x1 * c[i];
  }
}

constexpr Ops kScalar = {
    .name = "scalar",
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
    .dot_rows = dot_rows_t<false>,
    .dot_rows_f16 = dot_rows_t<true>,
    .acc_rows = acc_rows_t<false>,
    .acc_rows_f16 = acc_rows_t<true>,
    .quantize_q8_0 = quantize_q8_0,
    .rotate_halves = rotate_halves,
    .rotate_pairs = rotate_pairs,
};

bool has_avx2() { return cpu_features().avx2; }

}  // namespace

const Ops& scalar_ops() { return kScalar; }

const Ops* avx2_ops() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool ok = has_avx2();
  return ok ? &avx2_table() : nullptr;
#else
  return nullptr;
#endif
}

const Ops& ops() {
  static const Ops* const best = avx2_ops() ? avx2_ops() : &kScalar;
  return *best;
}

const Ops& ops(simd::Isa isa) { return isa == simd::Isa::kScalar ? kScalar : ops(); }

}  // namespace corral::backend::cpu::vec
