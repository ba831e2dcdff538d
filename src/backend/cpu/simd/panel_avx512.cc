// AVX-512 VNNI panel kernels (matmul_kernels.h): GEMM and GEMV on 8 weight rows interleaved
// 8 bytes at a time. A 64-byte vector of a panel holds 8 consecutive quants of each of the 8
// rows (row r in qword r); the 8 matching activation bytes broadcast to every qword and one
// vpdpbusd add 64 products into 16 dword sums, two per row (lanes 2r and 2r+1), with no
// widening steps (AVX2 needs maddubs, madd and add for half as many). The K formats split a
// row's elements between its two lanes; Q4_0 and Q8_0 give them a block each (PairPanel). The
// two sums of a row are added once per tile, after the scales are applied in float lanes.
//
// vpdpbusd multiplies unsigned by signed bytes: Q4_0 quants are unsigned already (0..15, the
// -8 taken off through the activations' sum), Q8_0 quants are stored + 128 at packing (the
// 128 taken off the same way). Integer sums cannot overflow: |q * y| <= 255 * 128 over 32
// elements per block.
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*() values, which -Wmaybe-uninitialized
// reports wherever they are inlined (GCC bug 105593); nothing here reads an undefined value.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/quant/blocks.h"
#include "ml/quant/formats.h"

namespace corral::backend::cpu::simd {
namespace {

using ml::DType;
namespace q = ml::quant;

inline __m512i load(const void* p) { return _mm512_loadu_si512(p); }

// 8 activation bytes broadcast to all 8 qwords.
inline __m512i bcast8(const int8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}

// The 8 rows' scales (halves at p) in float lanes 2r and 2r+1.
inline __m512 row_scales(const uint8_t* p) {
  const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm512_permutexvar_ps(dup, _mm512_zextps256_ps512(d));
}

// Matrix-vector products stream the packed weights once: each block asks for the bytes
// kPrefetchBytes past its end (as the AVX2 kernels do; the hardware prefetchers alone keep too
// few lines in flight for one core to reach its share of the bandwidth).
inline constexpr size_t kPrefetchBytes = 1024;
// Tiles of up to this many columns (decode steps of a few sequences) are bound by memory too:
// they prefetch the weights, and their activations a few blocks ahead, as the weights streaming
// through L1 evict long activation rows (k = 8192: 11 KiB per column). Measured on 4 sequences
// of llama-3.2-1b Q4_0: the feed-forward down projection took 1.7x one sequence's time, 1.25x
// with both.
inline constexpr int kPrefetchCols = 4;
inline void prefetch_lines(const void* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) {
    _mm_prefetch(static_cast<const char*>(p) + o, _MM_HINT_T0);
  }
}
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
  prefetch_lines(p + bytes + kPrefetchBytes, bytes);
}

// Adds the two sums of each row (lanes 2r, 2r+1) and stores rows r < nr of each column.
template <int NC>
inline void store_tile(const __m512 acc[NC], float* out, size_t ldo, int nr) {
  const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
  for (int c = 0; c < NC; ++c) {
    const __m512 pairs = _mm512_add_ps(acc[c], _mm512_permute_ps(acc[c], 0xB1));
    const __m256 rows = _mm512_castps512_ps256(_mm512_permutexvar_ps(evens, pairs));
    if (nr == kPanelRows) {
      _mm256_storeu_ps(out + c * ldo, rows);
    } else {
      _mm256_mask_storeu_ps(out + c * ldo, static_cast<__mmask8>((1u << nr) - 1), rows);
    }
  }
}

// Runs Kernel::tile<NC> over the columns, 8 at a time, then the rest. A column's sums run in
// the same order whatever its tile, so equal columns give equal outputs.
template <class Kernel, int NC = 8>
inline void tiles_from(int64_t k, const uint8_t* p, const uint8_t* x, size_t ldx, float* out,
                       size_t ldo, int nr, int nc) {
  if constexpr (NC > 0) {
    if (nc >= NC) {
      Kernel::template tile<NC>(k, p, x, ldx, out, ldo, nr);
      return;
    }
    tiles_from<Kernel, NC - 1>(k, p, x, ldx, out, ldo, nr, nc);
  }
}

template <class Kernel>
void panel_gemm(int64_t k, const void* panel, const void* x, size_t ldx, float* out, size_t ldo,
                int nr, int nc) {
  const auto* p = static_cast<const uint8_t*>(panel);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int c = 0; c < nc;) {
    const int n = nc - c >= 8 ? 8 : nc - c;
    tiles_from<Kernel>(k, p, xb + c * ldx, ldx, out + c * ldo, ldo, nr, n);
    c += n;
  }
}

// The 8-byte groups of the rows' bytes (row r at rows[r], nq groups) into nq vectors: qword r of
// vector v is group v of row r.
inline void transpose_qwords(const uint8_t* const rows[kPanelRows], int nq, uint8_t* out) {
  for (int v = 0; v < nq; ++v) {
    for (int r = 0; r < kPanelRows; ++r) std::memcpy(out + 64 * v + 8 * r, rows[r] + 8 * v, 8);
  }
}

// Sums of one column's block: init, plus the products of nv weight vectors with 8-byte groups
// of the column's quants (group v at xq + 8 * v).
template <int NV>
inline __m512i block_dot(__m512i init, const __m512i (&w)[NV], const int8_t* xq) {
  __m512i s = init;
  for (int v = 0; v < NV; ++v) s = _mm512_dpbusd_epi32(s, w[v], bcast8(xq + 8 * v));
  return s;
}

// Two of the vectors of block_dot (v0 and v0 + 1), from zero.
inline __m512i half_dot(const __m512i (&w)[4], int v0, const int8_t* xq) {
  const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[v0], bcast8(xq + 8 * v0));
  return _mm512_dpbusd_epi32(s, w[v0 + 1], bcast8(xq + 8 * v0 + 8));
}

// ---- Q4_0 and Q8_0: two blocks side by side ----

// Q4_0 and Q8_0 apply a float scale per 32-element block, and converting, scaling and adding a
// vector of sums cost as much as the products of a block: so lanes 2r and 2r+1 hold row r's
// sums of two consecutive blocks, and one float step serves 8 rows x 2 blocks. The activations
// come in the same pairs: per 64 elements, the two blocks' quants interleaved 4 bytes at a
// time (8 bytes at 8t: elements 4t..4t+3 of the first block, then of the second), their
// scales and the weight offsets' corrections (-8 sum, -128 sum) as pairs, so every operand is
// one broadcast load. An odd last block is paired with a zero block (zero scales and quants).
struct XPair {
  int8_t qs[64];
  float d[2];
  int32_t neg8_sum[2];
  int32_t neg128_sum[2];
};
static_assert(sizeof(XPair) == 88);

int64_t block_pairs(int64_t k) { return (k / q::kQK + 1) / 2; }
size_t x_row_bytes_pairs(int64_t k) { return static_cast<size_t>(block_pairs(k)) * sizeof(XPair); }

void quantize_x_pairs(const float* x, void* y, int64_t k) {
  auto* out = static_cast<XPair*>(y);
  const int64_t nb = k / q::kQK;
  for (int64_t p = 0; p < block_pairs(k); ++p) {
    XPair& o = out[p];
    for (int h = 0; h < 2; ++h) {
      const int64_t i = 2 * p + h;
      Q8SumBlock b{};
      if (i < nb) quantize_row_q8_0_sum_avx2(x + i * q::kQK, &b, q::kQK);
      for (int t = 0; t < 8; ++t) std::memcpy(o.qs + 8 * t + 4 * h, b.qs + 4 * t, 4);
      o.d[h] = b.d;
      o.neg8_sum[h] = -8 * b.sum;
      o.neg128_sum[h] = -128 * b.sum;
    }
  }
}

// 8 bytes at p (a pair of int32 or of float) in every qword.
inline __m512i bcast_pair(const void* p) { return bcast8(static_cast<const int8_t*>(p)); }

// Copies dword t of row r's two blocks (a at rows[r][0], b at rows[r][1]; nt dwords each) to
// vector t, lanes 2r and 2r+1, each byte XORed with flip.
inline void interleave_pair(const uint8_t* const rows[kPanelRows][2], int nt, uint8_t flip,
                            uint8_t* out) {
  for (int t = 0; t < nt; ++t) {
    for (int r = 0; r < kPanelRows; ++r) {
      for (int h = 0; h < 2; ++h) {
        for (int e = 0; e < 4; ++e) out[64 * t + 8 * r + 4 * h + e] = rows[r][h][4 * t + e] ^ flip;
      }
    }
  }
}

// Panel of a pair of blocks of 8 rows: 16 halves (row r's two d at 2r, 2r+1), then kVectors
// vectors of interleave_pair. Q4_0: 4 vectors of qs bytes, whose low nibbles are elements
// 4t..4t+3 and high nibbles 16+4t..; Q8_0: 8 vectors of quants + 128. Rows past nr and a
// block past the last are zero.
template <class Block, int kVectors, int kOffset>
struct PairPanel {
  static constexpr size_t kQuants = 32;
  static constexpr size_t kBlockBytes = kQuants + kVectors * 64;
  static_assert(kBlockBytes == 2 * kPanelRows * sizeof(Block));
  static constexpr bool kNibbles = kVectors == 4;
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(block_pairs(k)) * kBlockBytes; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<uint8_t*>(panel);
    static const uint8_t kZero[q::kQK] = {};
    const int64_t nb = k / q::kQK;
    for (int64_t p = 0; p < block_pairs(k); ++p, out += kBlockBytes) {
      const uint8_t* rows[kPanelRows][2];
      uint16_t d[2 * kPanelRows] = {};
      for (int r = 0; r < kPanelRows; ++r) {
        for (int h = 0; h < 2; ++h) {
          const int64_t i = 2 * p + h;
          rows[r][h] = kZero;
          if (r >= nr || i >= nb) continue;
          const auto& b =
              reinterpret_cast<const Block*>(static_cast<const uint8_t*>(w) + r * ldw)[i];
          rows[r][h] = reinterpret_cast<const uint8_t*>(b.qs);
          std::memcpy(&d[2 * r + h], &b.d, 2);
        }
      }
      std::memcpy(out, d, sizeof(d));
      interleave_pair(rows, kNibbles ? 4 : 8, kNibbles ? 0 : 0x80, out + kQuants);
    }
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int64_t p = 0; p < block_pairs(k); ++p) {
      const uint8_t* pb = panel + p * kBlockBytes;
      if constexpr (NC <= kPrefetchCols) prefetch_ahead(pb, kBlockBytes);
      // Elements 4t..4t+3 of both blocks in vector t.
      __m512i wq[8];
      for (int t = 0; t < kVectors; ++t) wq[t] = load(pb + kQuants + 64 * t);
      if constexpr (kNibbles) {
        for (int t = 0; t < 4; ++t) {
          wq[4 + t] = _mm512_and_si512(_mm512_srli_epi16(wq[t], 4), low4);
          wq[t] = _mm512_and_si512(wq[t], low4);
        }
      }
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb)));
      for (int c = 0; c < NC; ++c) {
        const XPair& y = reinterpret_cast<const XPair*>(x + c * ldx)[p];
        if constexpr (NC <= kPrefetchCols) prefetch_lines(&y + 4, sizeof(XPair));
        const int32_t* init = kOffset == 8 ? y.neg8_sum : y.neg128_sum;
        const __m512i s = block_dot(bcast_pair(init), wq, y.qs);
        const __m512 dy = _mm512_castsi512_ps(bcast_pair(y.d));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, dy), acc[c]);
      }
    }
    store_tile<NC>(acc, out, ldo, nr);
  }
};

using Q4_0Panel = PairPanel<q::BlockQ4_0, 4, 8>;
using Q8_0Panel = PairPanel<q::BlockQ8_0, 8, 128>;

// ---- K formats against Q8_K activations ----

// Per-row 16-bit factors for vpdpwssd from 16 bytes at p (two groups of the 8 rows): lanes 2r
// and 2r+1 get byte r (first) or byte 8 + r (second) as a 32-bit lane whose high word is zero
// (times a 32-bit sum below 2^15, vpdpwssd then multiplies the whole sum).
inline void row_factors(const uint8_t* p, __m512i& first, __m512i& second) {
  const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  const __m512i wide = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  first = _mm512_permutexvar_epi32(dup, wide);
  second = _mm512_permutexvar_epi32(_mm512_add_epi32(dup, _mm512_set1_epi32(8)), wide);
}

// Super-block i of each column of a tile (Q8_K activations, ldx bytes apart), with those a few
// blocks ahead prefetched in decode batches (kPrefetchCols).
template <int NC>
inline void super_blocks(const uint8_t* x, size_t ldx, int64_t i, const q::BlockQ8_K* (&y)[NC]) {
  for (int c = 0; c < NC; ++c) {
    y[c] = reinterpret_cast<const q::BlockQ8_K*>(x + c * ldx) + i;
    if constexpr (NC <= kPrefetchCols) prefetch_lines(y[c] + 2, sizeof(q::BlockQ8_K));
  }
}

// Q4_K panel super-block (256 elements of 8 rows, 1184 bytes, as the AVX2 one), and Q5_K's
// (1440 bytes, as its 8 rows' blocks), which adds the fifth bits as 8-byte masks:
//   d[8], dmin[8] as halves;
//   sc[8][8]: the 6-bit scale of group j of row r at byte 8j + r;
//   mn[4][8][2]: the mins of groups 2t and 2t+1 of row r at bytes 16t + 2r and 16t + 2r + 1;
//   16 quant vectors, 4 per 64 elements jj: vector 4jj+u holds bytes 32jj+8u..+7 of each row's
//     qs, whose low nibbles are elements 64jj+8u.. (group 2jj), high nibbles 64jj+32+8u..
//     (group 2jj+1);
//   Q5_K: 32 masks of 64 bits, 8 per jj: bit 8r+e of mask 8jj+v is the fifth bit of the
//     element at byte 8r+e of the low (v = u) or high (v = 4 + u) nibbles of vector 4jj+u.
// A group's dot products (16 elements per lane: at most 16 * 15 * 128 = 30720) fit 16 bits, so
// one vpdpwssd multiplies them by the group's scale and adds them up; with 5-bit quants only
// 8 elements do (31744), so Q5_K takes two per group. The mins go through
// vpdpwssd against the Q8_K sums of 16 in pairs: lane 2r holds m_{2t} in both words against
// (bsums[4t], bsums[4t+1]), lane 2r+1 m_{2t+1} against (bsums[4t+2], bsums[4t+3]).
template <bool kFifthBit>
struct QK_Panel {
  using Block = std::conditional_t<kFifthBit, q::BlockQ5_K, q::BlockQ4_K>;
  static constexpr size_t kScales = 32, kMins = kScales + 64, kQuants = kMins + 64;
  static constexpr size_t kMasks = kQuants + 16 * 64;
  static constexpr size_t kBlockBytes = kMasks + (kFifthBit ? 32 * 8 : 0);
  static_assert(kBlockBytes == 8 * sizeof(Block) + 32);
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(k / q::kQKK) * kBlockBytes; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<uint8_t*>(panel);
    static const uint8_t kZero[128] = {};
    for (int64_t i = 0; i < k / q::kQKK; ++i, out += kBlockBytes) {
      const uint8_t* rows[kPanelRows];
      uint16_t d[2 * kPanelRows] = {};
      uint8_t sc[8][kPanelRows] = {}, mn[4][kPanelRows][2] = {};
      uint64_t masks[32] = {};
      for (int r = 0; r < kPanelRows; ++r) {
        if (r >= nr) {
          rows[r] = kZero;
          continue;
        }
        const auto& b = reinterpret_cast<const Block*>(static_cast<const uint8_t*>(w) + r * ldw)[i];
        rows[r] = b.qs;
        std::memcpy(&d[r], &b.d, 2);
        std::memcpy(&d[kPanelRows + r], &b.dmin, 2);
        if constexpr (kFifthBit) {
          for (int jj = 0; jj < 4; ++jj) {
            for (int l = 0; l < 32; ++l) {
              const int u = l / 8, e = l % 8;
              const uint64_t bit = uint64_t{1} << (8 * r + e);
              if ((b.qh[l] >> (2 * jj)) & 1) masks[8 * jj + u] |= bit;
              if ((b.qh[l] >> (2 * jj + 1)) & 1) masks[8 * jj + 4 + u] |= bit;
            }
          }
        }
        uint8_t scales[8], mins[8];
        q::unpack_scales_mins_k4(b.scales, scales, mins);
        for (int j = 0; j < 8; ++j) {
          sc[j][r] = scales[j];
          mn[j / 2][r][j % 2] = mins[j];
        }
      }
      std::memcpy(out, d, sizeof(d));
      std::memcpy(out + kScales, sc, sizeof(sc));
      std::memcpy(out + kMins, mn, sizeof(mn));
      transpose_qwords(rows, 16, out + kQuants);
      if constexpr (kFifthBit) std::memcpy(out + kMasks, masks, sizeof(masks));
    }
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    const __m512i zero = _mm512_setzero_si512();
    for (int64_t i = 0; i < k / q::kQKK; ++i) {
      const uint8_t* pb = panel + i * kBlockBytes;
      const q::BlockQ8_K* y[NC];
      super_blocks<NC>(x, ldx, i, y);
      __m512i s[NC];
      for (int c = 0; c < NC; ++c) s[c] = zero;
      for (int jj = 0; jj < 4; ++jj) {
        if constexpr (NC <= kPrefetchCols)
          prefetch_ahead(pb + kBlockBytes / 4 * jj, kBlockBytes / 4);
        __m512i lo[4], hi[4];
        for (int u = 0; u < 4; ++u) {
          const __m512i raw = load(pb + kQuants + 64 * (4 * jj + u));
          lo[u] = _mm512_and_si512(raw, low4);
          hi[u] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low4);
          if constexpr (kFifthBit) {
            const __m512i sixteen = _mm512_set1_epi8(16);
            uint64_t m[2];
            std::memcpy(m, pb + kMasks + 8 * (8 * jj + u), 8);
            std::memcpy(m + 1, pb + kMasks + 8 * (8 * jj + 4 + u), 8);
            lo[u] = _mm512_mask_add_epi8(lo[u], _cvtu64_mask64(m[0]), lo[u], sixteen);
            hi[u] = _mm512_mask_add_epi8(hi[u], _cvtu64_mask64(m[1]), hi[u], sixteen);
          }
        }
        __m512i sclo, schi;
        row_factors(pb + kScales + 16 * jj, sclo, schi);
        for (int c = 0; c < NC; ++c) {
          const int8_t* yq = y[c]->qs + 64 * jj;
          if constexpr (kFifthBit) {
            s[c] = _mm512_dpwssd_epi32(s[c], half_dot(lo, 0, yq), sclo);
            s[c] = _mm512_dpwssd_epi32(s[c], half_dot(lo, 2, yq), sclo);
            s[c] = _mm512_dpwssd_epi32(s[c], half_dot(hi, 0, yq + 32), schi);
            s[c] = _mm512_dpwssd_epi32(s[c], half_dot(hi, 2, yq + 32), schi);
          } else {
            s[c] = _mm512_dpwssd_epi32(s[c], block_dot(zero, lo, yq), sclo);
            s[c] = _mm512_dpwssd_epi32(s[c], block_dot(zero, hi, yq + 32), schi);
          }
        }
      }
      // Bytes (m_{2t,r}, m_{2t+1,r}) to lanes 2r (m_{2t} in both words) and 2r+1 (m_{2t+1}).
      __m512i mins[4];
      for (int t = 0; t < 4; ++t) {
        const __m512i m = _mm512_cvtepu8_epi32(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kMins + 16 * t)));
        mins[t] = _mm512_or_si512(m, _mm512_slli_epi32(m, 16));
      }
      const __m512 dw = row_scales(pb), dmin = row_scales(pb + 16);
      for (int c = 0; c < NC; ++c) {
        __m512i m = zero;
        for (int t = 0; t < 4; ++t) {
          const auto* bs = reinterpret_cast<const int8_t*>(y[c]->bsums + 4 * t);
          m = _mm512_dpwssd_epi32(m, mins[t], bcast8(bs));
        }
        const __m512 dy = _mm512_set1_ps(y[c]->d);
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[c]), _mm512_mul_ps(dw, dy), acc[c]);
        acc[c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(m), _mm512_mul_ps(dmin, dy), acc[c]);
      }
    }
    store_tile<NC>(acc, out, ldo, nr);
  }
};

// Q6_K panel super-block (256 elements of 8 rows, 1680 bytes, as the 8 rows' blocks):
//   24 quant vectors, 3 per 32 elements h (offset 192h): vector j = 0..2 holds in qword r
//     elements 32h+8j..+7 of row r in bits 0..5 of its bytes, and in bits 6..7 bits 2j..2j+1
//     of elements 32h+24..+31 (same byte position). An and gives the first three vectors; the
//     fourth is the three 2-bit fields shifted together.
//   sc[16][8]: the int8 scale of group g of row r at byte 8g + r;
//   d of the 8 rows as halves.
// x = d*sc_g*(q - 32). The quants reach 63, so a group's products (8 per lane) could pass 16
// bits: they go through vpmaddubsw (pairs, at most 2 * 63 * 128), two of which still fit 16
// bits, and one vpdpwssd multiplies the sums by the group's scale (in both words of each
// lane) and adds them up. The -32 is taken off per super-block as 32 * sum_g sc_g * bsums[g],
// also through vpdpwssd.
// vpermw indices of Q6_KPanel: word 4r+e of the scale vectors from word r (first group of a
// pair) or 8+r (second); of the correction vectors, word 4r+q from word 8q+r (groups 4t+q).
struct Q6Words {
  alignas(64) int16_t first[32], second[32], corr[32];
};
constexpr Q6Words make_q6_words() {
  Q6Words w{};
  for (int i = 0; i < 32; ++i) {
    w.first[i] = static_cast<int16_t>(i / 4);
    w.second[i] = static_cast<int16_t>(8 + i / 4);
    w.corr[i] = static_cast<int16_t>(8 * (i % 4) + i / 4);
  }
  return w;
}
constexpr Q6Words kQ6Words = make_q6_words();

struct Q6_KPanel {
  static constexpr size_t kScales = 24 * 64, kD = kScales + 128;
  static constexpr size_t kBlockBytes = kD + 16;
  static_assert(kBlockBytes == kPanelRows * sizeof(q::BlockQ6_K));
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(k / q::kQKK) * kBlockBytes; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<uint8_t*>(panel);
    for (int64_t i = 0; i < k / q::kQKK; ++i, out += kBlockBytes) {
      uint8_t qv[kPanelRows][q::kQKK] = {};
      int8_t sc[16][kPanelRows] = {};
      uint16_t d[kPanelRows] = {};
      for (int r = 0; r < nr; ++r) {
        const auto& b =
            reinterpret_cast<const q::BlockQ6_K*>(static_cast<const uint8_t*>(w) + r * ldw)[i];
        std::memcpy(&d[r], &b.d, 2);
        for (int g = 0; g < 16; ++g) sc[g][r] = b.scales[g];
        unpack_q6_K_avx2(&b, qv[r]);
      }
      for (int h = 0; h < 8; ++h) {
        for (int j = 0; j < 3; ++j) {
          uint8_t* v = out + 192 * h + 64 * j;
          for (int r = 0; r < kPanelRows; ++r) {
            for (int e = 0; e < 8; ++e) {
              const uint8_t last = (qv[r][32 * h + 24 + e] >> (2 * j)) & 3;
              v[8 * r + e] = static_cast<uint8_t>(qv[r][32 * h + 8 * j + e] | (last << 6));
            }
          }
        }
      }
      std::memcpy(out + kScales, sc, sizeof(sc));
      std::memcpy(out + kD, d, sizeof(d));
    }
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    __m512 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm512_setzero_ps();
    const __m512i low6 = _mm512_set1_epi8(0x3F);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i first = load(kQ6Words.first), second = load(kQ6Words.second);
    const __m512i corr_idx = load(kQ6Words.corr);
    for (int64_t i = 0; i < k / q::kQKK; ++i) {
      const uint8_t* pb = panel + i * kBlockBytes;
      const q::BlockQ8_K* y[NC];
      super_blocks<NC>(x, ldx, i, y);
      __m512i s[NC];
      for (int c = 0; c < NC; ++c) s[c] = zero;
      for (int h = 0; h < 8; ++h) {
        if constexpr (NC <= kPrefetchCols)
          prefetch_ahead(pb + kBlockBytes / 8 * h, kBlockBytes / 8);
        const __m512i v0 = load(pb + 192 * h), v1 = load(pb + 192 * h + 64);
        const __m512i v2 = load(pb + 192 * h + 128);
        const __m512i w0 = _mm512_and_si512(v0, low6), w1 = _mm512_and_si512(v1, low6);
        const __m512i w2 = _mm512_and_si512(v2, low6);
        const __m512i w3 =
            _mm512_or_si512(_mm512_or_si512(_mm512_srli_epi16(_mm512_andnot_si512(low6, v0), 6),
                                            _mm512_srli_epi16(_mm512_andnot_si512(low6, v1), 4)),
                            _mm512_srli_epi16(_mm512_andnot_si512(low6, v2), 2));
        const __m512i sw = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kScales + 16 * h))));
        const __m512i sca = _mm512_permutexvar_epi16(first, sw);
        const __m512i scb = _mm512_permutexvar_epi16(second, sw);
        for (int c = 0; c < NC; ++c) {
          const int8_t* yq = y[c]->qs + 32 * h;
          const __m512i p0 = _mm512_add_epi16(_mm512_maddubs_epi16(w0, bcast8(yq)),
                                              _mm512_maddubs_epi16(w1, bcast8(yq + 8)));
          const __m512i p1 = _mm512_add_epi16(_mm512_maddubs_epi16(w2, bcast8(yq + 16)),
                                              _mm512_maddubs_epi16(w3, bcast8(yq + 24)));
          s[c] = _mm512_dpwssd_epi32(_mm512_dpwssd_epi32(s[c], p0, sca), p1, scb);
        }
      }
      __m512i corr[NC];
      for (int c = 0; c < NC; ++c) corr[c] = zero;
      for (int t = 0; t < 4; ++t) {
        const __m512i cv = _mm512_permutexvar_epi16(
            corr_idx, _mm512_cvtepi8_epi16(_mm256_loadu_si256(
                          reinterpret_cast<const __m256i*>(pb + kScales + 32 * t))));
        for (int c = 0; c < NC; ++c) {
          const auto* bs = reinterpret_cast<const int8_t*>(y[c]->bsums + 4 * t);
          corr[c] = _mm512_dpwssd_epi32(corr[c], cv, bcast8(bs));
        }
      }
      const __m512 dw = row_scales(pb + kD);
      for (int c = 0; c < NC; ++c) {
        const __m512i si = _mm512_sub_epi32(s[c], _mm512_slli_epi32(corr[c], 5));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(si), _mm512_mul_ps(dw, _mm512_set1_ps(y[c]->d)),
                                 acc[c]);
      }
    }
    store_tile<NC>(acc, out, ldo, nr);
  }
};

// ---- f32 and f16 weights against f32 activations read in place ----

// Panel of 8 rows in element pairs: lane 2r+h of vector p holds element 2p+h of row r (an odd
// k ends with a zero). The activations' pair (x[2p], x[2p+1]) broadcast to every qword and one
// FMA add 16 products, with no horizontal sums; f16 weights are widened by one vcvtph2ps per
// vector for all the tile's columns. Only for weights packed once at load time.
template <bool kHalf>
struct FloatPanel {
  using T = std::conditional_t<kHalf, uint16_t, float>;
  static int64_t pairs(int64_t k) { return (k + 1) / 2; }
  static size_t panel_bytes(int64_t k) {
    return static_cast<size_t>(pairs(k)) * 2 * kPanelRows * sizeof(T);
  }
  static size_t x_row_bytes(int64_t) { return 0; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<T*>(panel);
    for (int64_t p = 0; p < pairs(k); ++p) {
      for (int r = 0; r < kPanelRows; ++r) {
        const auto* row = reinterpret_cast<const T*>(static_cast<const uint8_t*>(w) + r * ldw);
        for (int h = 0; h < 2; ++h) {
          const int64_t i = 2 * p + h;
          out[2 * kPanelRows * p + 2 * r + h] = r < nr && i < k ? row[i] : T{0};
        }
      }
    }
  }

  static __m512 weights(const T* p) {
    if constexpr (kHalf) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    } else {
      return _mm512_loadu_ps(p);
    }
  }

  // (x[i], x[i+1]) in every pair of lanes.
  static __m512 xpair(const float* x) {
    double v;
    std::memcpy(&v, x, 8);
    return _mm512_castpd_ps(_mm512_set1_pd(v));
  }

  // Two accumulators per column (even and odd pairs) keep FMA chains short; a column's sums
  // run in the same order whatever its tile.
  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    const auto* pw = reinterpret_cast<const T*>(panel);
    const float* xc[NC];
    __m512 acc[2][NC];
    for (int c = 0; c < NC; ++c) {
      xc[c] = reinterpret_cast<const float*>(x + c * ldx);
      acc[0][c] = acc[1][c] = _mm512_setzero_ps();
    }
    const int64_t full = k / 2;
    int64_t p = 0;
    for (; p + 2 <= full; p += 2) {
      if constexpr (NC <= kPrefetchCols) {
        prefetch_ahead(reinterpret_cast<const uint8_t*>(pw + 2 * kPanelRows * p),
                       4 * kPanelRows * sizeof(T));
      }
      for (int u = 0; u < 2; ++u) {
        const __m512 wv = weights(pw + 2 * kPanelRows * (p + u));
        for (int c = 0; c < NC; ++c) {
          acc[u][c] = _mm512_fmadd_ps(wv, xpair(xc[c] + 2 * (p + u)), acc[u][c]);
        }
      }
    }
    for (; p < pairs(k); ++p) {
      const __m512 wv = weights(pw + 2 * kPanelRows * p);
      for (int c = 0; c < NC; ++c) {
        float two[2] = {xc[c][2 * p], 2 * p + 1 < k ? xc[c][2 * p + 1] : 0.0f};
        acc[0][c] = _mm512_fmadd_ps(wv, xpair(two), acc[0][c]);
      }
    }
    __m512 sum[NC];
    for (int c = 0; c < NC; ++c) sum[c] = _mm512_add_ps(acc[0][c], acc[1][c]);
    store_tile<NC>(sum, out, ldo, nr);
  }
};

template <class P>
constexpr PanelKernels make_panel(FromF32 from_f32, size_t (*x_row_bytes)(int64_t),
                                  bool packed_only = false) {
  return PanelKernels{from_f32, x_row_bytes, P::panel_bytes, P::pack, panel_gemm<P>, packed_only};
}

const PanelKernels kF32 =
    make_panel<FloatPanel<false>>(nullptr, FloatPanel<false>::x_row_bytes, true);
const PanelKernels kF16 =
    make_panel<FloatPanel<true>>(nullptr, FloatPanel<true>::x_row_bytes, true);
const PanelKernels kQ4_0 = make_panel<Q4_0Panel>(quantize_x_pairs, x_row_bytes_pairs);
const PanelKernels kQ8_0 = make_panel<Q8_0Panel>(quantize_x_pairs, x_row_bytes_pairs);
size_t x_row_bytes_q8_K(int64_t k) { return ml::row_size(DType::Q8_K, k); }
const PanelKernels kQ4_K = make_panel<QK_Panel<false>>(quantize_row_q8_K_avx2, x_row_bytes_q8_K);
const PanelKernels kQ5_K = make_panel<QK_Panel<true>>(quantize_row_q8_K_avx2, x_row_bytes_q8_K);
const PanelKernels kQ6_K = make_panel<Q6_KPanel>(quantize_row_q8_K_avx2, x_row_bytes_q8_K);

}  // namespace

const PanelKernels* avx512_panel_kernels(DType w) {
  switch (w) {
    case DType::F32:
      return &kF32;
    case DType::F16:
      return &kF16;
    case DType::Q4_0:
      return &kQ4_0;
    case DType::Q8_0:
      return &kQ8_0;
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
