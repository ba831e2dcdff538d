// AVX2 + FMA + F16C matmul kernels. Each format has a micro-kernel that computes a tile of RM
// weight rows x RN activation columns with all RM*RN accumulators in registers, so a weight
// block is loaded (and unpacked) once per tile and used for RN columns; gemm() walks a block of
// rows x columns with those tiles, columns outer so the activations of a tile stay in L1 while
// the weight rows stream. Matrix-vector products (one column) are bound by memory bandwidth:
// the quantized ones take one row at a time, as one sequential stream per thread is what the
// hardware prefetchers follow best (interleaving 4 rows of 1 KiB measured up to 2x slower from
// DRAM for Q4_0); float rows are long (4-8 KiB) and 4 rows at a time measured faster.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/quant/blocks.h"

namespace corral::backend::cpu::simd {
namespace {

using ml::DType;
namespace q = ml::quant;

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// Conversions local to this file: the shared inline ones (ml/fp16.h) must not be instantiated
// here, or the linker could keep this AVX2-compiled copy for callers on CPUs without AVX2.
// F16C rounds to nearest even, as the reference conversion does.
inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t float_to_half(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
inline float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

template <class T>
inline const T* at(const void* base, size_t offset) {
  return reinterpret_cast<const T*>(static_cast<const unsigned char*>(base) + offset);
}

// Calls Tile::run<rm, rn> for every tile of an nr x nc block, with rm <= RM and rn <= RN.
template <class Tile, int RM, int RN>
struct Walker {
  template <int rm, int rn>
  static void tile(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    int r = 0;
    for (; r + rm <= nr; r += rm) {
      Tile::template run<rm, rn>(k, at<char>(w, r * ldw), ldw, x, ldx, out + r, ldo);
    }
    if constexpr (rm > 1) {
      if (r < nr) tile<rm - 1, rn>(k, at<char>(w, r * ldw), ldw, x, ldx, out + r, ldo, nr - r);
    }
  }
  template <int rn>
  static void cols(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                   size_t ldo, int nr, int nc) {
    int c = 0;
    for (; c + rn <= nc; c += rn) {
      tile<RM, rn>(k, w, ldw, at<char>(x, c * ldx), ldx, out + c * ldo, ldo, nr);
    }
    if constexpr (rn > 1) {
      if (c < nc)
        cols<rn - 1>(k, w, ldw, at<char>(x, c * ldx), ldx, out + c * ldo, ldo, nr, nc - c);
    }
  }
};

template <class Tile, int RM, int RN, int RM_VEC>
void gemm(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out, size_t ldo,
          int nr, int nc) {
  if (nc == 1) {
    if constexpr (requires { Tile::matvec; }) {
      Tile::matvec(k, w, ldw, x, out, nr);
    } else {
      Walker<Tile, RM_VEC, 1>::template tile<RM_VEC, 1>(k, w, ldw, x, ldx, out, ldo, nr);
    }
  } else {
    Walker<Tile, RM, RN>::template cols<RN>(k, w, ldw, x, ldx, out, ldo, nr, nc);
  }
}

// ---- float weights (f32, f16, bf16) against f32 activations ----

struct LoadF32 {
  using T = float;
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
};
struct LoadF16 {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
};
struct LoadBF16 {
  using T = uint16_t;
  static __m256 load(const uint16_t* p) {
    // A bfloat16 is the high half of a float.
    const __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
  }
};

template <class Load>
struct FloatTile {
  using T = typename Load::T;
  template <int RM, int RN>
  static void run(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                  size_t ldo) {
    __m256 acc[RM][RN];
    for (int r = 0; r < RM; ++r) {
      for (int c = 0; c < RN; ++c) acc[r][c] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    if constexpr (RM == 1 && RN == 1) {
      // One row, one column: four independent sums hide the FMA latency.
      __m256 part[3] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      const T* wr = static_cast<const T*>(w);
      const float* xr = static_cast<const float*>(x);
      for (; i + 32 <= k; i += 32) {
        acc[0][0] = _mm256_fmadd_ps(Load::load(wr + i), _mm256_loadu_ps(xr + i), acc[0][0]);
        part[0] = _mm256_fmadd_ps(Load::load(wr + i + 8), _mm256_loadu_ps(xr + i + 8), part[0]);
        part[1] = _mm256_fmadd_ps(Load::load(wr + i + 16), _mm256_loadu_ps(xr + i + 16), part[1]);
        part[2] = _mm256_fmadd_ps(Load::load(wr + i + 24), _mm256_loadu_ps(xr + i + 24), part[2]);
      }
      acc[0][0] = _mm256_add_ps(_mm256_add_ps(acc[0][0], part[0]), _mm256_add_ps(part[1], part[2]));
    }
    for (; i + 8 <= k; i += 8) {
      __m256 xv[RN];
      for (int c = 0; c < RN; ++c) xv[c] = _mm256_loadu_ps(at<float>(x, c * ldx) + i);
      for (int r = 0; r < RM; ++r) {
        const __m256 wv = Load::load(at<T>(w, r * ldw) + i);
        for (int c = 0; c < RN; ++c) acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
      }
    }
    for (int r = 0; r < RM; ++r) {
      for (int c = 0; c < RN; ++c) {
        float s = hsum(acc[r][c]);
        for (int64_t j = i; j < k; ++j) {
          const T wj = at<T>(w, r * ldw)[j];
          float wf;
          if constexpr (sizeof(T) == 4) {
            wf = wj;
          } else if constexpr (std::is_same_v<Load, LoadF16>) {
            wf = half_to_float(wj);
          } else {
            wf = bf16_to_float(wj);
          }
          s += wf * at<float>(x, c * ldx)[j];
        }
        out[c * ldo + r] = s;
      }
    }
  }
};

// ---- 32-element formats against Q8_0 activations ----

// sum(a * b) of 32 signed bytes each, as 8 float partial sums. maddubs needs an unsigned left
// operand: |a| * (b with a's sign) is the same product.
inline __m256 dot_i8(__m256i a, __m256i b) {
  const __m256i abs_a = _mm256_sign_epi8(a, a);
  const __m256i b_signed = _mm256_sign_epi8(b, a);
  const __m256i p16 = _mm256_maddubs_epi16(abs_a, b_signed);
  return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

// Weight quants of a 32-element block as bytes for maddubs. Q8_0 quants are signed (dot_i8
// moves the sign); the others stay unsigned, with an offset (8 for Q4_0, 16 for Q5_0) taken off
// afterwards as offset * (pair sums of the activations), which all rows of a tile share, or a
// min (Q4_1, Q5_1) added as m * s with s = d * sum(q) of the Q8_1 activation block.
struct UnpackQ8_0 {
  using Block = q::BlockQ8_0;
  using XBlock = q::BlockQ8_0;
  static constexpr int kOffset = 0;
  static constexpr bool kSigned = true;
  static __m256i quants(const Block& b) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
  }
};

// Low nibbles are elements 0..15, high nibbles 16..31.
inline __m256i nibbles(const uint8_t* qs) {
  const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(raw, 4), raw);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0F));
}
// Bit j of the 32-bit qh as 0x10 in byte j: byte j takes byte j/8 of qh, tests bit j%8.
inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_setr_epi64x(0x0000000000000000LL, 0x0101010101010101LL,
                                             0x0202020202020202LL, 0x0303030303030303LL));
  const __m256i mask = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, mask), mask);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

struct UnpackQ4_0 {
  using Block = q::BlockQ4_0;
  using XBlock = q::BlockQ8_0;
  static constexpr int kOffset = 8;
  static constexpr bool kSigned = false;
  static __m256i quants(const Block& b) { return nibbles(b.qs); }
};
struct UnpackQ5_0 {
  using Block = q::BlockQ5_0;
  using XBlock = q::BlockQ8_0;
  static constexpr int kOffset = 16;
  static constexpr bool kSigned = false;
  static __m256i quants(const Block& b) { return _mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)); }
};
struct UnpackQ4_1 {
  using Block = q::BlockQ4_1;
  using XBlock = q::BlockQ8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kSigned = false;
  static __m256i quants(const Block& b) { return nibbles(b.qs); }
};
struct UnpackQ5_1 {
  using Block = q::BlockQ5_1;
  using XBlock = q::BlockQ8_1;
  static constexpr int kOffset = 0;
  static constexpr bool kSigned = false;
  static __m256i quants(const Block& b) { return _mm256_or_si256(nibbles(b.qs), fifth_bits(b.qh)); }
};

template <class Unpack>
struct Q8Tile {
  using Block = typename Unpack::Block;
  using XBlock = typename Unpack::XBlock;
  static constexpr bool kMin = std::is_same_v<XBlock, q::BlockQ8_1>;
  template <int RM, int RN>
  static void run(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                  size_t ldo) {
    __m256 acc[RM][RN];
    float acc_min[RM][RN];
    for (int r = 0; r < RM; ++r) {
      for (int c = 0; c < RN; ++c) {
        acc[r][c] = _mm256_setzero_ps();
        acc_min[r][c] = 0.0f;
      }
    }
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t nb = k / q::kQK;
    for (int64_t i = 0; i < nb; ++i) {
      __m256 dx[RN];
      float sx[RN];
      __m256i corr[RN];
      for (int c = 0; c < RN; ++c) {
        const XBlock& y = at<XBlock>(x, c * ldx)[i];
        dx[c] = _mm256_set1_ps(half_to_float(y.d));
        if constexpr (kMin) sx[c] = half_to_float(y.s);
        if constexpr (Unpack::kOffset != 0) {
          corr[c] =
              _mm256_maddubs_epi16(_mm256_set1_epi8(Unpack::kOffset),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs)));
        }
      }
      for (int r = 0; r < RM; ++r) {
        const Block& b = at<Block>(w, r * ldw)[i];
        const __m256i wq = Unpack::quants(b);
        const __m256 dw = _mm256_set1_ps(half_to_float(b.d));
        for (int c = 0; c < RN; ++c) {
          const __m256i xq =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at<XBlock>(x, c * ldx)[i].qs));
          __m256 dot;
          if constexpr (Unpack::kSigned) {
            dot = dot_i8(wq, xq);
          } else {
            __m256i p = _mm256_maddubs_epi16(wq, xq);
            if constexpr (Unpack::kOffset != 0) p = _mm256_sub_epi16(p, corr[c]);
            dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
          }
          acc[r][c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dx[c]), dot, acc[r][c]);
        }
        if constexpr (kMin) {
          const float m = half_to_float(b.m);
          for (int c = 0; c < RN; ++c) acc_min[r][c] += m * sx[c];
        }
      }
    }
    for (int r = 0; r < RM; ++r) {
      for (int c = 0; c < RN; ++c) out[c * ldo + r] = hsum(acc[r][c]) + acc_min[r][c];
    }
  }

  // One column, one row at a time (one sequential stream): what depends on the activations
  // alone (their scales, sums and offset corrections) is computed once per segment of blocks
  // for all rows, leaving per weight block only its unpacking and dot product.
  static void matvec(int64_t k, const void* w, size_t ldw, const void* x, float* out, int nr) {
    constexpr int64_t kSeg = 128;  // blocks per segment: 4.5 KiB of precomputed terms, in L1
    __m256 dx[kSeg];
    float sx[kSeg];
    __m256i corr[kSeg];
    const auto* xb = static_cast<const XBlock*>(x);
    const __m256i ones = _mm256_set1_epi16(1);
    const int64_t nb = k / q::kQK;
    for (int r = 0; r < nr; ++r) out[r] = 0.0f;
    for (int64_t s0 = 0; s0 < nb; s0 += kSeg) {
      const int64_t ns = std::min(kSeg, nb - s0);
      for (int64_t b = 0; b < ns; ++b) {
        const XBlock& y = xb[s0 + b];
        dx[b] = _mm256_set1_ps(half_to_float(y.d));
        if constexpr (kMin) sx[b] = half_to_float(y.s);
        if constexpr (Unpack::kOffset != 0) {
          corr[b] =
              _mm256_maddubs_epi16(_mm256_set1_epi8(Unpack::kOffset),
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs)));
        }
      }
      for (int r = 0; r < nr; ++r) {
        const Block* wr = at<Block>(w, r * ldw) + s0;
        // Four sums in turn: one alone would wait on the latency of the previous FMA.
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                         _mm256_setzero_ps()};
        float acc_min = 0.0f;
        auto step = [&](int64_t b, __m256& a) {
          const __m256i wq = Unpack::quants(wr[b]);
          const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[s0 + b].qs));
          __m256 dot;
          if constexpr (Unpack::kSigned) {
            dot = dot_i8(wq, xq);
          } else {
            __m256i p = _mm256_maddubs_epi16(wq, xq);
            if constexpr (Unpack::kOffset != 0) p = _mm256_sub_epi16(p, corr[b]);
            dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones));
          }
          const __m256 scale = _mm256_mul_ps(_mm256_set1_ps(half_to_float(wr[b].d)), dx[b]);
          a = _mm256_fmadd_ps(scale, dot, a);
          if constexpr (kMin) acc_min += half_to_float(wr[b].m) * sx[b];
        };
        int64_t b = 0;
        for (; b + 4 <= ns; b += 4) {
          step(b, acc[0]);
          step(b + 1, acc[1]);
          step(b + 2, acc[2]);
          step(b + 3, acc[3]);
        }
        for (; b < ns; ++b) step(b, acc[0]);
        out[r] +=
            hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))) +
            acc_min;
      }
    }
  }
};

// ---- K formats against Q8_K activations (one weight row per tile, RN columns) ----

// Q4_K and Q5_K: 8 groups of 32 with 6-bit scales sc and mins m: x = d*sc*q - dmin*m, q of 4
// bits (Q5_K: plus a fifth from qh). The mins term is d_y*dmin*sum(m*bsum) from the
// activations' sums of 16, so the quants themselves stay unsigned for maddubs.
template <class Block>
struct QK45Tile {
  static constexpr bool kFive = std::is_same_v<Block, q::BlockQ5_K>;
  template <int RM, int RN>
  static void run(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                  size_t ldo) {
    static_assert(RM == 1);
    const auto* wb = static_cast<const Block*>(w);
    __m256 acc[RN];
    float acc_min[RN];
    for (int c = 0; c < RN; ++c) {
      acc[c] = _mm256_setzero_ps();
      acc_min[c] = 0.0f;
    }
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i bit0 = _mm256_set1_epi8(0x01);
    for (int64_t i = 0; i < k / q::kQKK; ++i) {
      const Block& b = wb[i];
      // Unpack the 12 scale bytes to 8 scales (bytes 0..7) and 8 mins (bytes 8..15).
      uint32_t u[4];
      std::memcpy(u, b.scales, 12);
      u[3] = ((u[2] >> 4) & 0x0F0F0F0F) | (((u[1] >> 6) & 0x03030303) << 4);
      const uint32_t mins_low = u[1] & 0x3F3F3F3F;
      u[1] = (u[2] & 0x0F0F0F0F) | (((u[0] >> 6) & 0x03030303) << 4);
      u[2] = mins_low;
      u[0] &= 0x3F3F3F3F;
      const __m128i sm = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(u)));
      const __m128i mins16 =
          _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(u + 2)));
      // The 8 scales as int16 in both 128-bit lanes; group g is broadcast by one byte shuffle.
      const __m256i scales = _mm256_broadcastsi128_si256(sm);
      const float d = half_to_float(b.d);
      const float dmin = half_to_float(b.dmin);
      __m256i qv[8];
      __m256i hb;
      if constexpr (kFive) hb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh));
      for (int j = 0; j < 4; ++j) {
        const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * j));
        qv[2 * j] = _mm256_and_si256(raw, low4);
        qv[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        if constexpr (kFive) {
          // Bit 2j of qh[l] is the fifth bit of element l of the low run, bit 2j+1 of the high.
          qv[2 * j] = _mm256_or_si256(qv[2 * j], _mm256_slli_epi16(_mm256_and_si256(hb, bit0), 4));
          qv[2 * j + 1] = _mm256_or_si256(
              qv[2 * j + 1],
              _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), bit0), 4));
          hb = _mm256_srli_epi16(hb, 2);
        }
      }
      __m256i sv[8];
      for (int g = 0; g < 8; ++g) {
        sv[g] = _mm256_shuffle_epi8(scales, _mm256_set1_epi16(((2 * g + 1) << 8) | (2 * g)));
      }
      for (int c = 0; c < RN; ++c) {
        const q::BlockQ8_K& y = at<q::BlockQ8_K>(x, c * ldx)[i];
        // Sums of each 32 from the stored sums of each 16, times the mins.
        const __m128i bs =
            _mm_hadd_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums)),
                           _mm_loadu_si128(reinterpret_cast<const __m128i*>(y.bsums + 8)));
        __m128i pm = _mm_madd_epi16(mins16, bs);
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, _MM_SHUFFLE(1, 0, 3, 2)));
        pm = _mm_add_epi32(pm, _mm_shuffle_epi32(pm, _MM_SHUFFLE(2, 3, 0, 1)));
        acc_min[c] += dmin * y.d * static_cast<float>(_mm_cvtsi128_si32(pm));
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
          const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs + 32 * g));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(qv[g], yv), sv[g]));
        }
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(sumi), acc[c]);
      }
    }
    for (int c = 0; c < RN; ++c) out[c * ldo] = hsum(acc[c]) - acc_min[c];
  }
};

// The scales of 16 groups of 16 (int16, groups 0..7 in the low lane, 8..15 in the high) as one
// vector per 32 elements: group 2p broadcast in the low 128 bits, 2p+1 in the high.
inline void pair_scales(__m256i sc16, __m256i sv[8]) {
  const __m256i sc_lo = _mm256_permute2x128_si256(sc16, sc16, 0x00);
  const __m256i sc_hi = _mm256_permute2x128_si256(sc16, sc16, 0x11);
  for (int p = 0; p < 8; ++p) {
    const int64_t e = 4 * (p % 4);  // byte offset of scale 2p (mod 8) in a lane
    const int64_t lo = ((e + 1) << 8 | e) * 0x0001000100010001LL;
    const int64_t hi = ((e + 3) << 8 | (e + 2)) * 0x0001000100010001LL;
    sv[p] = _mm256_shuffle_epi8(p < 4 ? sc_lo : sc_hi, _mm256_setr_epi64x(lo, lo, hi, hi));
  }
}

// Q6_K: 16 groups of 16 with int8 scales: x = d*sc*(q - 32), q 6 bits. The -32 is applied once
// per block through the activations' sums of 16: sum(sc*(q-32)*y) = sum(sc*q*y) - 32*sum(sc*bsum).
struct Q6KTile {
  template <int RM, int RN>
  static void run(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                  size_t ldo) {
    static_assert(RM == 1);
    const auto* wb = static_cast<const q::BlockQ6_K*>(w);
    __m256 acc[RN];
    for (int c = 0; c < RN; ++c) acc[c] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i two = _mm256_set1_epi8(0x03);
    for (int64_t i = 0; i < k / q::kQKK; ++i) {
      const q::BlockQ6_K& b = wb[i];
      const __m256i sc16 =
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
      __m256i sv[8];
      pair_scales(sc16, sv);
      // The 256 quants, unsigned 6 bits: each 128 take 64 bytes of ql (runs 0,1 low nibbles,
      // runs 2,3 high nibbles) and 32 of qh (run j at bit 2j).
      __m256i qv[8];
      for (int n = 0; n < 2; ++n) {
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * n));
        const __m256i ql1 =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.ql + 64 * n + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * n));
        qv[4 * n + 0] = _mm256_or_si256(_mm256_and_si256(ql0, low4),
                                        _mm256_slli_epi16(_mm256_and_si256(qh, two), 4));
        qv[4 * n + 1] =
            _mm256_or_si256(_mm256_and_si256(ql1, low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4));
        qv[4 * n + 2] =
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), two), 4));
        qv[4 * n + 3] =
            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                            _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), two), 4));
      }
      const float d = half_to_float(b.d);
      for (int c = 0; c < RN; ++c) {
        const q::BlockQ8_K& y = at<q::BlockQ8_K>(x, c * ldx)[i];
        const __m256i corr =
            _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums)));
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(corr, 5));
        for (int g = 0; g < 8; ++g) {
          const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs + 32 * g));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(qv[g], yv), sv[g]));
        }
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(sumi), acc[c]);
      }
    }
    for (int c = 0; c < RN; ++c) out[c * ldo] = hsum(acc[c]);
  }
};

// Q2_K and Q3_K decoded per super-block to unsigned quants q (8 x 32 bytes), 16 group scales
// sc and 16 group corrections mn: x = dq*sc*q - dm*mn, both formats' 16 groups of 16 matching
// the Q8_K sums of 16. Q2_K: q 2 bits, sc/mn the 4-bit scale/min. Q3_K: q = 2 low bits + 4 *
// high bit, value sc*(q - 4), so mn = sc and dm = 4*dq.
struct DecodeQ2K {
  using Block = q::BlockQ2_K;
  static void decode(const Block& b, __m256i qv[8], __m256i& sc16, __m256i& mn16, float& dq,
                     float& dm) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales));
    const __m128i low4 = _mm_set1_epi8(0x0F);
    sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, low4));
    mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), low4));
    const __m256i two = _mm256_set1_epi8(0x03);
    for (int n = 0; n < 2; ++n) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * n));
      qv[4 * n + 0] = _mm256_and_si256(raw, two);
      qv[4 * n + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 2), two);
      qv[4 * n + 2] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), two);
      qv[4 * n + 3] = _mm256_and_si256(_mm256_srli_epi16(raw, 6), two);
    }
    dq = half_to_float(b.d);
    dm = half_to_float(b.dmin);
  }
};
struct DecodeQ3K {
  using Block = q::BlockQ3_K;
  static void decode(const Block& b, __m256i qv[8], __m256i& sc16, __m256i& mn16, float& dq,
                     float& dm) {
    // 16 6-bit scales: low nibbles in bytes 0..7 (groups 0..7 low, 8..15 high nibble), high
    // 2-bit pairs in bytes 8..11 (group g at bit 2*(g/4) of byte 8 + g%4).
    uint32_t a[4];
    std::memcpy(a, b.scales, 12);
    const uint32_t hi = a[2];
    a[2] = ((a[0] >> 4) & 0x0F0F0F0F) | (((hi >> 4) & 0x03030303) << 4);
    a[3] = ((a[1] >> 4) & 0x0F0F0F0F) | (((hi >> 6) & 0x03030303) << 4);
    a[0] = (a[0] & 0x0F0F0F0F) | ((hi & 0x03030303) << 4);
    a[1] = (a[1] & 0x0F0F0F0F) | (((hi >> 2) & 0x03030303) << 4);
    sc16 =
        _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))),
                         _mm256_set1_epi16(32));
    mn16 = sc16;
    const __m256i two = _mm256_set1_epi8(0x03);
    const __m256i bit0 = _mm256_set1_epi8(0x01);
    __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.hmask));
    for (int n = 0; n < 2; ++n) {
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs + 32 * n));
      for (int j = 0; j < 4; ++j) {
        // Run (n, j) takes bits 2j of qs and bit 4n + j of hmask.
        const __m256i low = _mm256_and_si256(_mm256_srli_epi16(raw, 2 * j), two);
        const __m256i high = _mm256_slli_epi16(_mm256_and_si256(hm, bit0), 2);
        qv[4 * n + j] = _mm256_or_si256(low, high);
        hm = _mm256_srli_epi16(hm, 1);
      }
    }
    dq = half_to_float(b.d);
    dm = 4.0f * dq;
  }
};

template <class Decode>
struct Q16Tile {
  template <int RM, int RN>
  static void run(int64_t k, const void* w, size_t ldw, const void* x, size_t ldx, float* out,
                  size_t ldo) {
    static_assert(RM == 1);
    const auto* wb = static_cast<const typename Decode::Block*>(w);
    __m256 acc[RN];
    float acc_min[RN];
    for (int c = 0; c < RN; ++c) {
      acc[c] = _mm256_setzero_ps();
      acc_min[c] = 0.0f;
    }
    for (int64_t i = 0; i < k / q::kQKK; ++i) {
      __m256i qv[8], sv[8], sc16, mn16;
      float dq, dm;
      Decode::decode(wb[i], qv, sc16, mn16, dq, dm);
      pair_scales(sc16, sv);
      for (int c = 0; c < RN; ++c) {
        const q::BlockQ8_K& y = at<q::BlockQ8_K>(x, c * ldx)[i];
        const int corr = hsum_i32(
            _mm256_madd_epi16(mn16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.bsums))));
        acc_min[c] += dm * y.d * static_cast<float>(corr);
        __m256i sumi = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
          const __m256i yv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(y.qs + 32 * g));
          sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(qv[g], yv), sv[g]));
        }
        acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dq * y.d), _mm256_cvtepi32_ps(sumi), acc[c]);
      }
    }
    for (int c = 0; c < RN; ++c) out[c * ldo] = hsum(acc[c]) - acc_min[c];
  }
};

// ---- activation quantizers, byte-exact with the scalar reference ones ----

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
inline float hmin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// roundf (half away from zero): v - trunc(v) is exact, so comparing it with 0.5 decides.
inline __m256i round_away(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_sub_ps(v, t);
  const __m256 sign_mask = _mm256_set1_ps(-0.0f);
  const __m256 abs_frac = _mm256_andnot_ps(sign_mask, frac);
  const __m256 up = _mm256_cmp_ps(abs_frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_set1_ps(1.0f), _mm256_and_ps(sign_mask, v));
  return _mm256_cvttps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
}

// Packs 4 x 8 int32 (each in -127..127) to 32 int8 in order.
inline __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b);
  const __m256i cd = _mm256_packs_epi32(c, d);
  const __m256i all = _mm256_packs_epi16(ab, cd);
  // The packs interleave 128-bit lanes: dwords come out as a0 b0 c0 d0 a1 b1 c1 d1.
  return _mm256_permutevar8x32_epi32(all, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

void quantize_q8_0(const float* x, void* y, int64_t k) {
  auto* out = static_cast<q::BlockQ8_0*>(y);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t i = 0; i < k / q::kQK; ++i, x += q::kQK) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      m = _mm256_max_ps(m, _mm256_and_ps(v[j], abs_mask));
    }
    const float d = hmax(m) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[i].d = float_to_half(d);
    const __m256 idv = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int j = 0; j < 4; ++j) qi[j] = round_away(_mm256_mul_ps(v[j], idv));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[i].qs), pack_i8(qi[0], qi[1], qi[2], qi[3]));
  }
}

void quantize_q8_1(const float* x, void* y, int64_t k) {
  auto* out = static_cast<q::BlockQ8_1*>(y);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  for (int64_t i = 0; i < k / q::kQK; ++i, x += q::kQK) {
    __m256 v[4];
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < 4; ++j) {
      v[j] = _mm256_loadu_ps(x + 8 * j);
      m = _mm256_max_ps(m, _mm256_and_ps(v[j], abs_mask));
    }
    const float d = hmax(m) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    out[i].d = float_to_half(d);
    const __m256 idv = _mm256_set1_ps(id);
    __m256i qi[4];
    for (int j = 0; j < 4; ++j) qi[j] = round_away(_mm256_mul_ps(v[j], idv));
    const int sum =
        hsum_i32(_mm256_add_epi32(_mm256_add_epi32(qi[0], qi[1]), _mm256_add_epi32(qi[2], qi[3])));
    out[i].s = float_to_half(static_cast<float>(sum) * d);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[i].qs), pack_i8(qi[0], qi[1], qi[2], qi[3]));
  }
}

void quantize_q8_K(const float* x, void* y, int64_t k) {
  auto* out = static_cast<q::BlockQ8_K*>(y);
  for (int64_t i = 0; i < k / q::kQKK; ++i, x += q::kQKK) {
    __m256 vmax = _mm256_loadu_ps(x), vmin = vmax;
    for (int j = 8; j < q::kQKK; j += 8) {
      const __m256 v = _mm256_loadu_ps(x + j);
      vmax = _mm256_max_ps(vmax, v);
      vmin = _mm256_min_ps(vmin, v);
    }
    const float mx = hmax(vmax), mn = hmin(vmin);
    // The element of largest magnitude, the first one when +a and -a are both present (as the
    // reference's scan picks it).
    float max;
    if (mx > -mn) {
      max = mx;
    } else if (-mn > mx) {
      max = mn;
    } else {
      max = mx;
      for (int j = 0; j < q::kQKK; ++j) {
        if (std::fabs(x[j]) == mx) {
          max = x[j];
          break;
        }
      }
    }
    if (max == 0.0f) {
      std::memset(&out[i], 0, sizeof(out[i]));
      continue;
    }
    const float iscale = -127.0f / max;
    const __m256 is = _mm256_set1_ps(iscale);
    const __m256i top = _mm256_set1_epi32(127);
    for (int j = 0; j < q::kQKK; j += 32) {
      __m256i qi[4];
      for (int t = 0; t < 4; ++t) {
        // cvtps rounds half to even under the default rounding mode, like ggml's nearest_int.
        qi[t] = _mm256_min_epi32(
            _mm256_cvtps_epi32(_mm256_mul_ps(is, _mm256_loadu_ps(x + j + 8 * t))), top);
      }
      out[i].bsums[j / 16] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(qi[0], qi[1])));
      out[i].bsums[j / 16 + 1] = static_cast<int16_t>(hsum_i32(_mm256_add_epi32(qi[2], qi[3])));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[i].qs + j),
                          pack_i8(qi[0], qi[1], qi[2], qi[3]));
    }
    out[i].d = 1.0f / iscale;
  }
}

const MatMulKernels kF32{DType::F32, nullptr, gemm<FloatTile<LoadF32>, 4, 3, 4>};
const MatMulKernels kF16{DType::F32, nullptr, gemm<FloatTile<LoadF16>, 4, 3, 4>};
const MatMulKernels kBF16{DType::F32, nullptr, gemm<FloatTile<LoadBF16>, 4, 3, 4>};
const MatMulKernels kQ8_0{DType::Q8_0, quantize_q8_0, gemm<Q8Tile<UnpackQ8_0>, 2, 4, 1>};
const MatMulKernels kQ4_0{DType::Q8_0, quantize_q8_0, gemm<Q8Tile<UnpackQ4_0>, 2, 4, 1>};
const MatMulKernels kQ4_1{DType::Q8_1, quantize_q8_1, gemm<Q8Tile<UnpackQ4_1>, 2, 4, 1>};
const MatMulKernels kQ5_0{DType::Q8_0, quantize_q8_0, gemm<Q8Tile<UnpackQ5_0>, 2, 4, 1>};
const MatMulKernels kQ5_1{DType::Q8_1, quantize_q8_1, gemm<Q8Tile<UnpackQ5_1>, 2, 4, 1>};
const MatMulKernels kQ2_K{DType::Q8_K, quantize_q8_K, gemm<Q16Tile<DecodeQ2K>, 1, 4, 1>};
const MatMulKernels kQ3_K{DType::Q8_K, quantize_q8_K, gemm<Q16Tile<DecodeQ3K>, 1, 4, 1>};
const MatMulKernels kQ4_K{DType::Q8_K, quantize_q8_K, gemm<QK45Tile<q::BlockQ4_K>, 1, 4, 1>};
const MatMulKernels kQ5_K{DType::Q8_K, quantize_q8_K, gemm<QK45Tile<q::BlockQ5_K>, 1, 4, 1>};
const MatMulKernels kQ6_K{DType::Q8_K, quantize_q8_K, gemm<Q6KTile, 1, 4, 1>};

}  // namespace

void quantize_row_q8_0_avx2(const float* x, void* y, int64_t k) { quantize_q8_0(x, y, k); }
void quantize_row_q8_K_avx2(const float* x, void* y, int64_t k) { quantize_q8_K(x, y, k); }

const MatMulKernels* avx2_kernels(DType w) {
  switch (w) {
    case DType::F32:
      return &kF32;
    case DType::F16:
      return &kF16;
    case DType::BF16:
      return &kBF16;
    case DType::Q8_0:
      return &kQ8_0;
    case DType::Q4_0:
      return &kQ4_0;
    case DType::Q4_1:
      return &kQ4_1;
    case DType::Q5_0:
      return &kQ5_0;
    case DType::Q5_1:
      return &kQ5_1;
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
    default:
      return nullptr;
  }
}

}  // namespace corral::backend::cpu::simd
