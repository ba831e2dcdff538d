// CUDA kernels, one file per op (kernels/<op>.cu, the stems of backend/cpu/kernels/ and
// backend/reference/). This header is what the backend's host code (cuda_backend.cc) sees: plain
// structs with device addresses and the launch functions, which enqueue work on a stream and
// return (no synchronization, no allocation). Every kernel reads its sources through their
// strides, so permuted and transposed views work as the reference backend's do.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

struct cublasContext;

// Callable from kernels too when nvcc compiles the includer.
#ifdef __CUDACC__
#define CORRAL_HOST_DEVICE __host__ __device__
#else
#define CORRAL_HOST_DEVICE
#endif

namespace corral::backend::cuda {

// Element types, numbered as ml::DType (GGUF's ggml_type); cuda_backend.cc checks the numbers.
enum class DT : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

// A tensor as a kernel sees it: ne in elements (ne[0] fastest), nb in bytes, data on the device.
struct TensorArg {
  char* data = nullptr;
  DT dtype = DT::F32;
  int64_t ne[4] = {1, 1, 1, 1};
  int64_t nb[4] = {0, 0, 0, 0};
  CORRAL_HOST_DEVICE int64_t nelements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  CORRAL_HOST_DEVICE int64_t nrows() const { return ne[1] * ne[2] * ne[3]; }
};

// What every launch needs: the stream, cuBLAS (bound to the stream) and a device scratch area
// of scratch_bytes (for ops whose *_scratch_bytes says they need one).
struct Launch {
  cudaStream_t stream = nullptr;
  cublasContext* cublas = nullptr;
  void* scratch = nullptr;
  size_t scratch_bytes = 0;
};

struct RopeArgs {
  int mode = 0;  // ml::op::RopeMode's numbers
  int n_dims = 0;
  float freq_scale = 1.0f;
  float ext_factor = 0.0f;
  float attn_factor = 1.0f;
  float theta_scale = 1.0f;  // freq_base^(-2 / n_dims), computed on the host as the reference does
  float corr[2] = {0.0f, 0.0f};  // YaRN correction dims, computed on the host
  int sections[4] = {0, 0, 0, 0};
  int cache_len = 0;    // rotated pairs * 2
  bool has_ff = false;  // src2 frequency factors present
};

struct ConvArgs {
  int s0 = 1, s1 = 1, p0 = 0, p1 = 0, d0 = 1, d1 = 1;
};

// ---- one launch per op (kernels/<op>.cu) ----
void cont(const Launch& l, const TensorArg& dst, const TensorArg& a);
void cpy(const Launch& l, const TensorArg& dst, const TensorArg& a);
void get_rows(const Launch& l, const TensorArg& dst, const TensorArg& table, const TensorArg& ids);
// Scratch for the dequantize-then-GEMM path of large products (0 when the direct kernel runs).
size_t mul_mat_scratch_bytes(const TensorArg& dst, const TensorArg& w, const TensorArg& x);
void mul_mat(const Launch& l, const TensorArg& dst, const TensorArg& w, const TensorArg& x);
void add(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b);
void sub(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b);
void mul(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b);
void div(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b);
void swiglu(const Launch& l, const TensorArg& dst, const TensorArg& gate, const TensorArg& up);
void scale(const Launch& l, const TensorArg& dst, const TensorArg& a, float s, float bias);
void silu(const Launch& l, const TensorArg& dst, const TensorArg& a);
void gelu(const Launch& l, const TensorArg& dst, const TensorArg& a, bool erf_form);
void gelu_quick(const Launch& l, const TensorArg& dst, const TensorArg& a);
void rms_norm(const Launch& l, const TensorArg& dst, const TensorArg& a, float eps);
// weight/bias: data null when absent.
void layer_norm(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& weight,
                const TensorArg& bias, float eps);
// mask: data null when absent.
void softmax(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& mask,
             float scale);
// ff: data null when absent.
void rope(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& pos,
          const TensorArg& ff, const RopeArgs& r);
void concat(const Launch& l, const TensorArg& dst, const TensorArg& a, const TensorArg& b, int dim);
void set_rows(const Launch& l, const TensorArg& dst, const TensorArg& rows, const TensorArg& idx);
void argmax(const Launch& l, const TensorArg& dst, const TensorArg& a);
void sum_rows(const Launch& l, const TensorArg& dst, const TensorArg& a);
void mean(const Launch& l, const TensorArg& dst, const TensorArg& a);
// mask: data null when absent.
void flash_attn(const Launch& l, const TensorArg& dst, const TensorArg& q, const TensorArg& k,
                const TensorArg& v, const TensorArg& mask, float scale, bool causal);
// The largest head size flash_attn handles (per-lane registers hold head_dim / 32 values).
inline constexpr int64_t kMaxHeadDim = 256;
void im2col(const Launch& l, const TensorArg& dst, const TensorArg& kernel, const TensorArg& image,
            const ConvArgs& c);
void conv2d(const Launch& l, const TensorArg& dst, const TensorArg& kernel, const TensorArg& image,
            const ConvArgs& c);

}  // namespace corral::backend::cuda
