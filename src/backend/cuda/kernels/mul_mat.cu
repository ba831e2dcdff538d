// dst[i, j, b2, b3] = sum_e w[e, i, b2 / r2, b3 / r3] * x[e, j, b2, b3] (r2 = B2 / b2,
// r3 = B3 / b3: consecutive activation heads share a weight head, as grouped-query attention
// lays them out). Two paths:
//   - direct: one warp per output element, each lane dotting 32-element chunks of the weight row
//     (dequantized in registers) with the activation row; every dtype, any strides. Decode
//     (n = 1) is this path: the weights are read once, in order.
//   - GEMM: for larger n with 2-D weights and contiguous activations, the weights are
//     dequantized in chunks of rows into scratch (f16, or bf16 for bf16 weights) with the
//     activations converted alike, and cuBLAS multiplies them with f32 accumulation; f32 weights
//     go to SGEMM as they are (llama.cpp's cuBLAS path does the same conversions).
#include <cublas_v2.h>

#include "backend/cuda/kernels/common.cuh"

namespace corral::backend::cuda {
namespace {

constexpr int kWarpsPerBlock = 4;
// Below this many activation columns the direct kernel wins (it reads the weights n times from
// cache instead of writing a dequantized copy).
constexpr int64_t kGemmMinColumns = 16;
// Weight elements dequantized per GEMM chunk (32 MiB of f16).
constexpr int64_t kChunkElems = int64_t{16} << 20;

// The dot product of chunk c (elements 32c .. 32c + 31) of a weight row with x.
template <DT T>
__device__ __forceinline__ float dot_chunk(const char* wrow, int64_t wnb0, int64_t c,
                                           const char* xrow, int64_t xnb0, int64_t k) {
  float s = 0.0f;
  if constexpr (T == DT::F32 || T == DT::F16 || T == DT::BF16) {
    const int64_t e0 = 32 * c;
#pragma unroll 8
    for (int e = 0; e < 32; ++e) {
      if (e0 + e < k) {
        s += row_elem<T>(wrow, wnb0, e0 + e) *
             *reinterpret_cast<const float*>(xrow + (e0 + e) * xnb0);
      }
    }
  } else {
    // Block formats: k is a multiple of the block size, so a chunk never crosses a block.
    constexpr int kBs = block_elems(T);
    const int64_t block = 32 * c / kBs;
    const int j0 = static_cast<int>(32 * c % kBs);
    const char* bp = wrow + block * block_bytes(T);
    const char* xp = xrow + 32 * c * xnb0;
#pragma unroll 8
    for (int e = 0; e < 32; ++e) {
      s += dequant_elem<T>(bp, j0 + e) * *reinterpret_cast<const float*>(xp + e * xnb0);
    }
  }
  return s;
}

template <DT T>
__global__ void mul_mat_direct(TensorArg dst, TensorArg w, TensorArg x) {
  const int lane = threadIdx.x % 32;
  const int64_t k = w.ne[0];
  const int64_t n_chunks = (k + 31) / 32;
  const int64_t r2 = x.ne[2] / w.ne[2], r3 = x.ne[3] / w.ne[3];
  const int64_t total = dst.nelements();
  const int64_t warps = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;
  for (int64_t o = blockIdx.x * static_cast<int64_t>(kWarpsPerBlock) + threadIdx.x / 32; o < total;
       o += warps) {
    int64_t i, j, b2, b3;
    unravel(o, dst.ne, i, j, b2, b3);
    const char* wrow = at(w, 0, i, b2 / r2, b3 / r3);
    const char* xrow = at(x, 0, j, b2, b3);
    float acc = 0.0f;
    for (int64_t c = lane; c < n_chunks; c += 32)
      acc += dot_chunk<T>(wrow, w.nb[0], c, xrow, x.nb[0], k);
    acc = warp_sum(acc);
    if (lane == 0) *reinterpret_cast<float*>(at(dst, i, j, b2, b3)) = acc;
  }
}

// Rows [row0, row0 + rows) of w, dequantized to f16 or bf16 into out (row-major, k per row).
template <DT T, bool kBf16>
__global__ void dequant_rows(TensorArg w, int64_t row0, int64_t rows, uint16_t* out) {
  const int64_t k = w.ne[0];
  const int64_t n = rows * k;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / k, e = i % k;
    const float v = row_elem<T>(at(w, 0, row0 + r, 0, 0), w.nb[0], e);
    out[i] = kBf16 ? float_to_bf16(v) : float_to_half(v);
  }
}

// Activations [k, N] (columns nb1 apart) to f16 or bf16, packed.
template <bool kBf16>
__global__ void convert_columns(TensorArg x, int64_t cols, uint16_t* out) {
  const int64_t k = x.ne[0];
  const int64_t n = cols * k;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t c = i / k, e = i % k;
    const float v = *reinterpret_cast<const float*>(x.data + c * x.nb[1] + e * x.nb[0]);
    out[i] = kBf16 ? float_to_bf16(v) : float_to_half(v);
  }
}

// Whether dims 1..3 of t form one axis of uniform stride nb[1].
bool columns_uniform(const TensorArg& t) {
  return t.nb[2] == t.nb[1] * t.ne[1] && t.nb[3] == t.nb[2] * t.ne[2];
}

bool gemm_path(const TensorArg& dst, const TensorArg& w, const TensorArg& x) {
  const int64_t cols = x.ne[1] * x.ne[2] * x.ne[3];
  return cols >= kGemmMinColumns && w.ne[2] == 1 && w.ne[3] == 1 && x.nb[0] == 4 &&
         x.nb[1] % 4 == 0 && columns_uniform(x) && dst.nb[0] == 4 && dst.nb[1] % 4 == 0 &&
         columns_uniform(dst) && (w.dtype != DT::F32 || (w.nb[0] == 4 && w.nb[1] % 4 == 0));
}

int64_t chunk_rows(const TensorArg& w) {
  const int64_t rows = kChunkElems / w.ne[0];
  return rows < 1 ? 1 : (rows < w.ne[1] ? rows : w.ne[1]);
}

void gemm(const Launch& l, const TensorArg& dst, const TensorArg& w, const TensorArg& x) {
  const int64_t k = w.ne[0], m = w.ne[1];
  const int64_t cols = x.ne[1] * x.ne[2] * x.ne[3];
  const float one = 1.0f, zero = 0.0f;
  cublasHandle_t h = l.cublas;
  if (w.dtype == DT::F32) {
    cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m), static_cast<int>(cols),
                static_cast<int>(k), &one, reinterpret_cast<const float*>(w.data),
                static_cast<int>(w.nb[1] / 4), reinterpret_cast<const float*>(x.data),
                static_cast<int>(x.nb[1] / 4), &zero, reinterpret_cast<float*>(dst.data),
                static_cast<int>(dst.nb[1] / 4));
    return;
  }
  const bool bf16 = w.dtype == DT::BF16;
  const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  auto* xs = static_cast<uint16_t*>(l.scratch);
  uint16_t* ws = xs + ((cols * k + 127) / 128) * 128;
  if (bf16) {
    convert_columns<true><<<grid_for(cols * k), kBlock, 0, l.stream>>>(x, cols, xs);
  } else {
    convert_columns<false><<<grid_for(cols * k), kBlock, 0, l.stream>>>(x, cols, xs);
  }
  const int64_t step = chunk_rows(w);
  for (int64_t row0 = 0; row0 < m; row0 += step) {
    const int64_t rows = row0 + step < m ? step : m - row0;
    dispatch_dtype(w.dtype, [&]<DT T>() {
      if (bf16) {
        dequant_rows<T, true><<<grid_for(rows * k), kBlock, 0, l.stream>>>(w, row0, rows, ws);
      } else {
        dequant_rows<T, false><<<grid_for(rows * k), kBlock, 0, l.stream>>>(w, row0, rows, ws);
      }
    });
    // Column-major view: the chunk is a k x rows matrix (lda k), x a k x cols one; the result
    // rows x cols lands at dst row row0 with the destination's column stride.
    cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), static_cast<int>(cols),
                 static_cast<int>(k), &one, ws, type, static_cast<int>(k), xs, type,
                 static_cast<int>(k), &zero, reinterpret_cast<float*>(dst.data) + row0, CUDA_R_32F,
                 static_cast<int>(dst.nb[1] / 4), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  }
}

}  // namespace

size_t mul_mat_scratch_bytes(const TensorArg& dst, const TensorArg& w, const TensorArg& x) {
  if (!gemm_path(dst, w, x) || w.dtype == DT::F32) return 0;
  const int64_t cols = x.ne[1] * x.ne[2] * x.ne[3];
  const int64_t x_elems = ((cols * w.ne[0] + 127) / 128) * 128;
  return static_cast<size_t>(x_elems + chunk_rows(w) * w.ne[0]) * 2;
}

void mul_mat(const Launch& l, const TensorArg& dst, const TensorArg& w, const TensorArg& x) {
  if (dst.nelements() == 0) return;
  if (gemm_path(dst, w, x) && l.cublas && l.scratch_bytes >= mul_mat_scratch_bytes(dst, w, x)) {
    gemm(l, dst, w, x);
    return;
  }
  const int64_t total = dst.nelements();
  const unsigned blocks = grid_for(total, kWarpsPerBlock);
  dispatch_dtype(w.dtype, [&]<DT T>() {
    mul_mat_direct<T><<<blocks, 32 * kWarpsPerBlock, 0, l.stream>>>(dst, w, x);
  });
}

}  // namespace corral::backend::cuda
