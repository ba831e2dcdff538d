// Device helpers shared by the kernels: strided element access, f16/bf16 conversion (round to
// nearest even, as ml/fp16.h), per-element dequantization of every block format (the layouts of
// ml/quant/blocks.h, read byte by byte so no struct padding question arises), reductions and
// launch-size arithmetic.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/kernels/kernels.h"

namespace corral::backend::cuda {

inline constexpr int kBlock = 256;  // threads per block of the element-wise kernels

inline unsigned grid_for(int64_t n, int block = kBlock) {
  const int64_t blocks = (n + block - 1) / block;
  // Kernels loop with a grid stride, so capping the grid loses nothing.
  return static_cast<unsigned>(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

// ---- element access ----

__device__ __forceinline__ float half_to_float(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}
__device__ __forceinline__ uint16_t float_to_half(float f) {
  return __half_as_ushort(__float2half_rn(f));
}
__device__ __forceinline__ float bf16_to_float(uint16_t h) {
  return __uint_as_float(static_cast<uint32_t>(h) << 16);
}
__device__ __forceinline__ uint16_t float_to_bf16(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}
__device__ __forceinline__ uint16_t read_u16(const char* p) {
  return *reinterpret_cast<const uint16_t*>(p);
}

__device__ __forceinline__ char* at(const TensorArg& t, int64_t i0, int64_t i1, int64_t i2,
                                    int64_t i3) {
  return t.data + i0 * t.nb[0] + i1 * t.nb[1] + i2 * t.nb[2] + i3 * t.nb[3];
}

// Splits a flat index (ne[0] fastest) into four coordinates.
__device__ __forceinline__ void unravel(int64_t i, const int64_t ne[4], int64_t& i0, int64_t& i1,
                                        int64_t& i2, int64_t& i3) {
  i0 = i % ne[0];
  i /= ne[0];
  i1 = i % ne[1];
  i /= ne[1];
  i2 = i % ne[2];
  i3 = i / ne[2];
}

// One element of a plain dtype at p, as f32.
__device__ __forceinline__ float load_plain(const char* p, DT t) {
  switch (t) {
    case DT::F32:
      return *reinterpret_cast<const float*>(p);
    case DT::F16:
      return half_to_float(read_u16(p));
    case DT::BF16:
      return bf16_to_float(read_u16(p));
    case DT::I32:
      return static_cast<float>(*reinterpret_cast<const int32_t*>(p));
    case DT::I64:
      return static_cast<float>(*reinterpret_cast<const int64_t*>(p));
    case DT::F64:
      return static_cast<float>(*reinterpret_cast<const double*>(p));
    case DT::I16:
      return static_cast<float>(*reinterpret_cast<const int16_t*>(p));
    case DT::I8:
      return static_cast<float>(*reinterpret_cast<const int8_t*>(p));
    default:
      return 0.0f;
  }
}

__device__ __forceinline__ void store_plain(char* p, DT t, float v) {
  switch (t) {
    case DT::F32:
      *reinterpret_cast<float*>(p) = v;
      break;
    case DT::F16:
      *reinterpret_cast<uint16_t*>(p) = float_to_half(v);
      break;
    case DT::BF16:
      *reinterpret_cast<uint16_t*>(p) = float_to_bf16(v);
      break;
    case DT::I32:
      *reinterpret_cast<int32_t*>(p) = static_cast<int32_t>(v);
      break;
    default:
      break;
  }
}

__device__ __forceinline__ float load(const TensorArg& t, int64_t i0, int64_t i1, int64_t i2,
                                      int64_t i3) {
  return load_plain(at(t, i0, i1, i2, i3), t.dtype);
}
__device__ __forceinline__ void store(const TensorArg& t, int64_t i0, int64_t i1, int64_t i2,
                                      int64_t i3, float v) {
  store_plain(at(t, i0, i1, i2, i3), t.dtype, v);
}

// An I32 or I64 index.
__device__ __forceinline__ int64_t load_index(const TensorArg& t, int64_t i0, int64_t i1,
                                              int64_t i2, int64_t i3) {
  const char* p = at(t, i0, i1, i2, i3);
  if (t.dtype == DT::I64) return *reinterpret_cast<const int64_t*>(p);
  return *reinterpret_cast<const int32_t*>(p);
}

// ---- block formats ----

__host__ __device__ constexpr bool is_block_format(DT t) {
  return t == DT::Q4_0 || t == DT::Q4_1 || t == DT::Q5_0 || t == DT::Q5_1 || t == DT::Q8_0 ||
         t == DT::Q8_1 || t == DT::Q2_K || t == DT::Q3_K || t == DT::Q4_K || t == DT::Q5_K ||
         t == DT::Q6_K || t == DT::Q8_K;
}
// Elements per block and bytes per block (ml/dtype.cc's table for the block formats).
__host__ __device__ constexpr int block_elems(DT t) {
  return t == DT::Q2_K || t == DT::Q3_K || t == DT::Q4_K || t == DT::Q5_K || t == DT::Q6_K ||
                 t == DT::Q8_K
             ? 256
             : (is_block_format(t) ? 32 : 1);
}
__host__ __device__ constexpr int block_bytes(DT t) {
  switch (t) {
    case DT::Q4_0:
      return 18;
    case DT::Q4_1:
      return 20;
    case DT::Q5_0:
      return 22;
    case DT::Q5_1:
      return 24;
    case DT::Q8_0:
      return 34;
    case DT::Q8_1:
      return 36;
    case DT::Q2_K:
      return 84;
    case DT::Q3_K:
      return 110;
    case DT::Q4_K:
      return 144;
    case DT::Q5_K:
      return 176;
    case DT::Q6_K:
      return 210;
    case DT::Q8_K:
      return 292;
    case DT::F16:
    case DT::BF16:
    case DT::I16:
      return 2;
    case DT::I8:
      return 1;
    case DT::I64:
    case DT::F64:
      return 8;
    default:
      return 4;
  }
}

// Scale and min of group j (0..7) of a Q4_K/Q5_K super-block (ml/quant/formats.h's
// get_scale_min_k4): 6-bit values packed in 12 bytes.
__device__ __forceinline__ void scale_min_k4(int j, const uint8_t* q, int& sc, int& m) {
  if (j < 4) {
    sc = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

// Element j of one block of format T starting at b (the dequantize_row_<fmt> arithmetic of
// ml/quant, element by element). Products and sums are rounded separately (__fmul_rn,
// __fadd_rn: never fused into an FMA) so the values are the reference's to the bit, as the
// exact (NMSE 0) get_rows cases require.
template <DT T>
__device__ __forceinline__ float dequant_elem(const char* bc, int j) {
  const auto* b = reinterpret_cast<const uint8_t*>(bc);
  if constexpr (T == DT::Q4_0) {
    // d; qs[16]: element j < 16 in the low nibble of qs[j], j >= 16 in the high nibble of
    // qs[j - 16].
    const float d = half_to_float(read_u16(bc));
    const uint8_t q = b[2 + (j & 15)];
    const int v = j < 16 ? (q & 0xF) : (q >> 4);
    return static_cast<float>(v - 8) * d;
  } else if constexpr (T == DT::Q4_1) {
    const float d = half_to_float(read_u16(bc));
    const float m = half_to_float(read_u16(bc + 2));
    const uint8_t q = b[4 + (j & 15)];
    const int v = j < 16 ? (q & 0xF) : (q >> 4);
    return __fadd_rn(__fmul_rn(static_cast<float>(v), d), m);
  } else if constexpr (T == DT::Q5_0) {
    // d; qh (32 fifth bits, little-endian); qs[16] as Q4_0.
    const float d = half_to_float(read_u16(bc));
    const int hbit = (b[2 + j / 8] >> (j % 8)) & 1;
    const uint8_t q = b[6 + (j & 15)];
    const int v = (j < 16 ? (q & 0xF) : (q >> 4)) | (hbit << 4);
    return static_cast<float>(v - 16) * d;
  } else if constexpr (T == DT::Q5_1) {
    const float d = half_to_float(read_u16(bc));
    const float m = half_to_float(read_u16(bc + 2));
    const int hbit = (b[4 + j / 8] >> (j % 8)) & 1;
    const uint8_t q = b[8 + (j & 15)];
    const int v = (j < 16 ? (q & 0xF) : (q >> 4)) | (hbit << 4);
    return __fadd_rn(__fmul_rn(static_cast<float>(v), d), m);
  } else if constexpr (T == DT::Q8_0) {
    const float d = half_to_float(read_u16(bc));
    return static_cast<float>(static_cast<int8_t>(b[2 + j])) * d;
  } else if constexpr (T == DT::Q8_1) {
    const float d = half_to_float(read_u16(bc));
    return static_cast<float>(static_cast<int8_t>(b[4 + j])) * d;
  } else if constexpr (T == DT::Q2_K) {
    // scales[16] @0, qs[64] @16, d @80, dmin @82. Group g = j / 16 lies in half g / 8, quarter
    // (g % 8) / 2 (the bit shift) and the first or second 16 bytes of the half's 32 (g % 2).
    const int g = j / 16, l = j % 16;
    const uint8_t q = b[16 + 32 * (g / 8) + 16 * (g % 2) + l];
    const int shift = 2 * ((g % 8) / 2);
    const uint8_t sc = b[g];
    const float d = half_to_float(read_u16(bc + 80));
    const float dmin = half_to_float(read_u16(bc + 82));
    return __fsub_rn(
        __fmul_rn(__fmul_rn(d, static_cast<float>(sc & 0xF)), static_cast<float>((q >> shift) & 3)),
        __fmul_rn(dmin, static_cast<float>(sc >> 4)));
  } else if constexpr (T == DT::Q3_K) {
    // hmask[32] @0, qs[64] @32, scales[12] @96, d @108.
    const int g = j / 16, l = j % 16;
    const uint8_t q = b[32 + 32 * (g / 8) + 16 * (g % 2) + l];
    const uint8_t hm = b[16 * (g % 2) + l];
    const int shift = 2 * ((g % 8) / 2);
    const int hbit = g / 2;
    const uint8_t* packed = b + 96;
    const int low = g < 8 ? (packed[g] & 0xF) : (packed[g - 8] >> 4);
    const int high = (packed[8 + g % 4] >> (2 * (g / 4))) & 3;
    const int sc = (low | (high << 4)) - 32;
    const float d = half_to_float(read_u16(bc + 108));
    const int v = ((q >> shift) & 3) - (((hm >> hbit) & 1) ? 0 : 4);
    return d * static_cast<float>(sc) * static_cast<float>(v);
  } else if constexpr (T == DT::Q4_K) {
    // d @0, dmin @2, scales[12] @4, qs[128] @16. Chunk c = j / 64 holds groups 2c (low
    // nibbles of qs[32c..32c+31]) and 2c + 1 (high nibbles).
    const int c = j / 64, r = j % 64, l = r % 32, hi = r / 32;
    int sc, m;
    scale_min_k4(2 * c + hi, b + 4, sc, m);
    const uint8_t q = b[16 + 32 * c + l];
    const int v = hi ? (q >> 4) : (q & 0xF);
    const float d = half_to_float(read_u16(bc));
    const float dmin = half_to_float(read_u16(bc + 2));
    return __fsub_rn(__fmul_rn(__fmul_rn(d, static_cast<float>(sc)), static_cast<float>(v)),
                     __fmul_rn(dmin, static_cast<float>(m)));
  } else if constexpr (T == DT::Q5_K) {
    // d @0, dmin @2, scales[12] @4, qh[32] @16, qs[128] @48; the fifth bit of element l of
    // group 2c + hi is bit 2c + hi of qh[l].
    const int c = j / 64, r = j % 64, l = r % 32, hi = r / 32;
    int sc, m;
    scale_min_k4(2 * c + hi, b + 4, sc, m);
    const uint8_t q = b[48 + 32 * c + l];
    const int v = (hi ? (q >> 4) : (q & 0xF)) | (((b[16 + l] >> (2 * c + hi)) & 1) << 4);
    const float d = half_to_float(read_u16(bc));
    const float dmin = half_to_float(read_u16(bc + 2));
    return __fsub_rn(__fmul_rn(__fmul_rn(d, static_cast<float>(sc)), static_cast<float>(v)),
                     __fmul_rn(dmin, static_cast<float>(m)));
  } else if constexpr (T == DT::Q6_K) {
    // ql[128] @0, qh[64] @128, scales[16] (int8) @192, d @208. Half h = j / 128; quarter k of
    // the half: low nibbles of ql[64h + 32(k % 2) + l] for k < 2, high for k >= 2; top bits at
    // bit 2k of qh[32h + l]; scale 8h + 2k + l / 16.
    const int h = j / 128, r = j % 128, k = r / 32, l = r % 32;
    const uint8_t ql = b[64 * h + 32 * (k % 2) + l];
    const uint8_t qh = b[128 + 32 * h + l];
    const int v = (((ql >> (4 * (k / 2))) & 0xF) | (((qh >> (2 * k)) & 3) << 4)) - 32;
    const int sc = static_cast<int8_t>(b[192 + 8 * h + 2 * k + l / 16]);
    const float d = half_to_float(read_u16(bc + 208));
    return d * static_cast<float>(sc) * static_cast<float>(v);
  } else if constexpr (T == DT::Q8_K) {
    // d (f32) @0, qs[256] @4.
    const float d = *reinterpret_cast<const float*>(bc);
    return d * static_cast<float>(static_cast<int8_t>(b[4 + j]));
  } else {
    return 0.0f;
  }
}

// Element i0 of a row of format T (plain or block) starting at row, with element stride nb0
// (plain types only; block formats keep their blocks packed along a row).
template <DT T>
__device__ __forceinline__ float row_elem(const char* row, int64_t nb0, int64_t i0) {
  if constexpr (T == DT::F32) {
    return *reinterpret_cast<const float*>(row + i0 * nb0);
  } else if constexpr (T == DT::F16) {
    return half_to_float(read_u16(row + i0 * nb0));
  } else if constexpr (T == DT::BF16) {
    return bf16_to_float(read_u16(row + i0 * nb0));
  } else {
    constexpr int kBs = block_elems(T);
    return dequant_elem<T>(row + (i0 / kBs) * block_bytes(T), static_cast<int>(i0 % kBs));
  }
}

// The same with the format chosen at run time (for ops where speed does not matter).
__device__ __forceinline__ float row_elem_any(const char* row, DT t, int64_t nb0, int64_t i0) {
  switch (t) {
    case DT::Q4_0:
      return row_elem<DT::Q4_0>(row, nb0, i0);
    case DT::Q4_1:
      return row_elem<DT::Q4_1>(row, nb0, i0);
    case DT::Q5_0:
      return row_elem<DT::Q5_0>(row, nb0, i0);
    case DT::Q5_1:
      return row_elem<DT::Q5_1>(row, nb0, i0);
    case DT::Q8_0:
      return row_elem<DT::Q8_0>(row, nb0, i0);
    case DT::Q8_1:
      return row_elem<DT::Q8_1>(row, nb0, i0);
    case DT::Q2_K:
      return row_elem<DT::Q2_K>(row, nb0, i0);
    case DT::Q3_K:
      return row_elem<DT::Q3_K>(row, nb0, i0);
    case DT::Q4_K:
      return row_elem<DT::Q4_K>(row, nb0, i0);
    case DT::Q5_K:
      return row_elem<DT::Q5_K>(row, nb0, i0);
    case DT::Q6_K:
      return row_elem<DT::Q6_K>(row, nb0, i0);
    case DT::Q8_K:
      return row_elem<DT::Q8_K>(row, nb0, i0);
    default:
      return load_plain(row + i0 * nb0, t);
  }
}

// Calls f.template operator()<T>() with T the run-time dtype as a template argument, for the
// dtypes a kernel is instantiated for; returns false for others.
template <class F>
bool dispatch_dtype(DT t, F&& f) {
  switch (t) {
    case DT::F32:
      f.template operator()<DT::F32>();
      return true;
    case DT::F16:
      f.template operator()<DT::F16>();
      return true;
    case DT::BF16:
      f.template operator()<DT::BF16>();
      return true;
    case DT::Q4_0:
      f.template operator()<DT::Q4_0>();
      return true;
    case DT::Q4_1:
      f.template operator()<DT::Q4_1>();
      return true;
    case DT::Q5_0:
      f.template operator()<DT::Q5_0>();
      return true;
    case DT::Q5_1:
      f.template operator()<DT::Q5_1>();
      return true;
    case DT::Q8_0:
      f.template operator()<DT::Q8_0>();
      return true;
    case DT::Q8_1:
      f.template operator()<DT::Q8_1>();
      return true;
    case DT::Q2_K:
      f.template operator()<DT::Q2_K>();
      return true;
    case DT::Q3_K:
      f.template operator()<DT::Q3_K>();
      return true;
    case DT::Q4_K:
      f.template operator()<DT::Q4_K>();
      return true;
    case DT::Q5_K:
      f.template operator()<DT::Q5_K>();
      return true;
    case DT::Q6_K:
      f.template operator()<DT::Q6_K>();
      return true;
    case DT::Q8_K:
      f.template operator()<DT::Q8_K>();
      return true;
    default:
      return false;
  }
}

// ---- quantization of one 32-block (ml/quant q8.cc and q4_0.cc, with the products kept
// unfused so ties round as the reference's do) ----

__device__ __forceinline__ void quantize_block_q8_0(const float* x, char* out) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = fmaxf(amax, fabsf(x[j]));
  const float d = amax / 127;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *reinterpret_cast<uint16_t*>(out) = float_to_half(d);
  for (int j = 0; j < 32; ++j) {
    out[2 + j] = static_cast<char>(static_cast<int8_t>(roundf(__fmul_rn(x[j], id))));
  }
}

__device__ __forceinline__ void quantize_block_q4_0(const float* x, char* out) {
  // The signed value of largest magnitude (the first one on ties), as fit::signed_absmax.
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (fabsf(x[j]) > amax) {
      amax = fabsf(x[j]);
      max = x[j];
    }
  }
  const float d = max / -8;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  *reinterpret_cast<uint16_t*>(out) = float_to_half(d);
  for (int j = 0; j < 16; ++j) {
    const int q0 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j], id), 8.5f)));
    const int q1 = min(15, static_cast<int>(__fadd_rn(__fmul_rn(x[j + 16], id), 8.5f)));
    out[2 + j] = static_cast<char>(q0 | (q1 << 4));
  }
}

// ---- reductions ----

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
template <class T>
__device__ T block_sum(T v) {
  __shared__ T partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int n_warps = blockDim.x / 32;
  T total = lane < n_warps ? partial[lane] : T(0);
  return warp_sum(total);
}

__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int n_warps = blockDim.x / 32;
  float m = lane < n_warps ? partial[lane] : -INFINITY;
  return warp_max(m);
}

// Row r (0 .. nrows-1, ne[1] fastest) as coordinates.
__device__ __forceinline__ void row_coords(int64_t r, const int64_t ne[4], int64_t& i1, int64_t& i2,
                                           int64_t& i3) {
  i1 = r % ne[1];
  r /= ne[1];
  i2 = r % ne[2];
  i3 = r / ne[2];
}

}  // namespace corral::backend::cuda
