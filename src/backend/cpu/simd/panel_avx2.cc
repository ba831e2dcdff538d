// AVX2 panel kernels (matmul_kernels.h): GEMM on 8 weight rows interleaved 4 bytes at a time.
// A 32-byte vector of a panel holds 4 consecutive quants of each of the 8 rows; maddubs with
// the 4 matching activation bytes broadcast to every row gives per row two 16-bit partial sums
// (adjacent lanes), and one madd per block turns them into the 8 rows' 32-bit dot products in
// row order. Compared with one row per vector (matmul_avx2.cc) there is no horizontal sum and
// the conversion to float and scaling happen once per 8 rows, not per row; each panel vector
// is unpacked once and used for 4 columns.
//
// 16-bit partial sums are added before the madd only where they cannot overflow: a 4-bit quant
// (0..15) times an activation (-127..127, the q8 quantizers never produce -128) over a pair is
// at most 3810 in magnitude, so 8 vectors (32 elements) sum to at most 30480; 6-bit quants
// (0..63) allow 2 vectors.
#include <immintrin.h>

#include <cstring>

#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/quant/blocks.h"
#include "ml/quant/formats.h"

namespace corral::backend::cpu::simd {
namespace {

using ml::DType;
namespace q = ml::quant;

inline float half_to_float(uint16_t h) { return _cvtsh_ss(h); }

inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// 4 activation bytes broadcast to all 8 dwords.
inline __m256i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Copies dword t of each of the 8 rows' 4*nt bytes (row r at rows[r]) into vector t, row r at
// dword r: out[32 * t + 4 * r] = rows[r][4 * t].
inline void transpose_dwords(const uint8_t* const rows[kPanelRows], int nt, uint8_t* out) {
  for (int t = 0; t < nt; ++t) {
    for (int r = 0; r < kPanelRows; ++r) std::memcpy(out + 32 * t + 4 * r, rows[r] + 4 * t, 4);
  }
}

// Matrix-vector products stream the packed weights from memory once: the hardware prefetchers
// alone keep too few lines in flight for one core to reach its share of the bandwidth, so each
// block (of `bytes` at p) asks for as many bytes kPrefetchBytes past its end, so the distance
// is the same for small blocks (Q4_0: 144 bytes) and large ones (Q6_K: 1680). Large blocks
// spread the requests over their inner loop (prefetch_part): a burst of 27 at a Q6_K block's
// start queues behind the core's few outstanding misses (measured: Q6_K decode from 93% to 96%
// of the stream read bandwidth).
inline constexpr size_t kPrefetchBytes = 1024;
inline void prefetch_ahead(const uint8_t* p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(p + bytes + kPrefetchBytes + o), _MM_HINT_T0);
  }
}

// Part `part` of `parts` of prefetch_ahead(p, bytes): the requests whose offsets fall in
// [lo, hi), so that a block's requests spread over its inner loop instead of queueing up
// behind each other at its start. Together the parts ask for each line once.
inline void prefetch_part(const uint8_t* p, size_t bytes, size_t part, size_t parts) {
  const size_t lo = bytes * part / parts, hi = bytes * (part + 1) / parts;
  const uint8_t* base = p + bytes + kPrefetchBytes;
  for (size_t o = (lo + 63) & ~size_t{63}; o < hi; o += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(base + o), _MM_HINT_T0);
  }
}

// Row r of a tile of 8 rows x NC columns: out[c * ldo + r] for r < nr.
template <int NC>
inline void store_tile(const __m256 acc[NC], float* out, size_t ldo, int nr) {
  for (int c = 0; c < NC; ++c) {
    if (nr == kPanelRows) {
      _mm256_storeu_ps(out + c * ldo, acc[c]);
    } else {
      alignas(32) float tmp[kPanelRows];
      _mm256_store_ps(tmp, acc[c]);
      for (int r = 0; r < nr; ++r) out[c * ldo + r] = tmp[r];
    }
  }
}

// Runs Kernel::tile<NC> over the columns, 4 at a time, then the rest.
template <class Kernel>
void panel_gemm(int64_t k, const void* panel, const void* x, size_t ldx, float* out, size_t ldo,
                int nr, int nc) {
  const auto* p = static_cast<const uint8_t*>(panel);
  const auto* xb = static_cast<const uint8_t*>(x);
  int c = 0;
  for (; c + 4 <= nc; c += 4)
    Kernel::template tile<4>(k, p, xb + c * ldx, ldx, out + c * ldo, ldo, nr);
  switch (nc - c) {
    case 3:
      Kernel::template tile<3>(k, p, xb + c * ldx, ldx, out + c * ldo, ldo, nr);
      break;
    case 2:
      Kernel::template tile<2>(k, p, xb + c * ldx, ldx, out + c * ldo, ldo, nr);
      break;
    case 1:
      Kernel::template tile<1>(k, p, xb + c * ldx, ldx, out + c * ldo, ldo, nr);
      break;
    default:
      break;
  }
}

// ---- f32 weights against f32 activations read in place ----

// F32 panel: element i of the 8 rows in vector i (k * 32 bytes, as the 8 rows). Each vector
// times the activation broadcast adds to the 8 rows' sums at once: no horizontal sums, which
// dominate the row kernels on the short rows of small models. Independent sums (U per column)
// hide the FMA latency. U is the same for every tile width: a column's sums then run in the
// same order wherever it falls in the batch, so equal inputs give equal outputs.
struct F32Panel {
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(k) * kPanelRows * 4; }
  static size_t x_row_bytes(int64_t) { return 0; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<float*>(panel);
    for (int r = 0; r < kPanelRows; ++r) {
      const auto* row = reinterpret_cast<const float*>(static_cast<const uint8_t*>(w) + r * ldw);
      for (int64_t i = 0; i < k; ++i) out[i * kPanelRows + r] = r < nr ? row[i] : 0.0f;
    }
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    constexpr int U = 4;
    const auto* p = reinterpret_cast<const float*>(panel);
    const float* xc[NC];
    __m256 acc[U][NC];
    for (int c = 0; c < NC; ++c) {
      xc[c] = reinterpret_cast<const float*>(x + c * ldx);
      for (int u = 0; u < U; ++u) acc[u][c] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + U <= k; i += U) {
      if constexpr (NC == 1) {
        prefetch_ahead(reinterpret_cast<const uint8_t*>(p + i * kPanelRows), U * kPanelRows * 4);
      }
      for (int u = 0; u < U; ++u) {
        const __m256 wv = _mm256_loadu_ps(p + (i + u) * kPanelRows);
        for (int c = 0; c < NC; ++c) {
          acc[u][c] = _mm256_fmadd_ps(wv, _mm256_set1_ps(xc[c][i + u]), acc[u][c]);
        }
      }
    }
    for (; i < k; ++i) {
      const __m256 wv = _mm256_loadu_ps(p + i * kPanelRows);
      for (int c = 0; c < NC; ++c)
        acc[0][c] = _mm256_fmadd_ps(wv, _mm256_set1_ps(xc[c][i]), acc[0][c]);
    }
    __m256 sum[NC];
    for (int c = 0; c < NC; ++c) {
      sum[c] = acc[0][c];
      for (int u = 1; u < U; ++u) sum[c] = _mm256_add_ps(sum[c], acc[u][c]);
    }
    store_tile<NC>(sum, out, ldo, nr);
  }
};

// ---- Q4_0 weights: activations as q8 blocks with a float scale and their sum ----

}  // namespace

// The Q8_0 block of the activations with d widened and the sum of the quants (Q8SumBlock).
void quantize_row_q8_0_sum_avx2(const float* x, void* y, int64_t k) {
  auto* out = static_cast<Q8SumBlock*>(y);
  for (int64_t i = 0; i < k / q::kQK; ++i) {
    q::BlockQ8_0 b;
    quantize_row_q8_0_avx2(x + i * q::kQK, &b, q::kQK);
    std::memcpy(out[i].qs, b.qs, q::kQK);
    out[i].d = half_to_float(b.d);
    const __m256i s16 = _mm256_maddubs_epi16(_mm256_set1_epi8(1), load(b.qs));
    const __m256i s32 = _mm256_madd_epi16(s16, _mm256_set1_epi16(1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    out[i].sum = _mm_cvtsi128_si32(s);
  }
}

// The 256 unsigned 6-bit quants of a Q6_K block in element order. Each 128 elements take 64
// bytes of ql and 32 of qh (ggml's dequantize_row_q6_K).
void unpack_q6_K_avx2(const void* block, uint8_t* o) {
  const auto& b = *static_cast<const q::BlockQ6_K*>(block);
  const __m256i low4 = _mm256_set1_epi8(0x0F), bits45 = _mm256_set1_epi8(0x30);
  for (int n = 0; n < 2; ++n, o += 128) {
    const __m256i l0 = load(b.ql + 64 * n), l1 = load(b.ql + 64 * n + 32);
    const __m256i h = load(b.qh + 32 * n);
    const __m256i q0 = _mm256_or_si256(_mm256_and_si256(l0, low4),
                                       _mm256_and_si256(_mm256_slli_epi16(h, 4), bits45));
    const __m256i q1 = _mm256_or_si256(_mm256_and_si256(l1, low4),
                                       _mm256_and_si256(_mm256_slli_epi16(h, 2), bits45));
    const __m256i q2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                                       _mm256_and_si256(h, bits45));
    const __m256i q3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                       _mm256_and_si256(_mm256_srli_epi16(h, 2), bits45));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), q0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32), q1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64), q2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 96), q3);
  }
}

namespace {

using XBlock = Q8SumBlock;

// Q4_0 panel block (32 elements of 8 rows, 144 bytes: as many as the 8 rows' blocks, so decode
// reads no more than from the file): the 8 scales as halves, then 4 vectors. Vector t holds
// bytes 4t..4t+3 of each row's qs: low nibbles are elements 4t..4t+3, high nibbles elements
// 16+4t..16+4t+3.
struct Q4_0Panel {
  static constexpr size_t kQuants = 16;
  static constexpr size_t kBlockBytes = kQuants + 4 * 32;
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(k / q::kQK) * kBlockBytes; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<uint8_t*>(panel);
    static const uint8_t kZero[16] = {};
    for (int64_t i = 0; i < k / q::kQK; ++i, out += kBlockBytes) {
      const uint8_t* rows[kPanelRows];
      uint16_t d[kPanelRows];
      for (int r = 0; r < kPanelRows; ++r) {
        if (r < nr) {
          const auto& b =
              reinterpret_cast<const q::BlockQ4_0*>(static_cast<const uint8_t*>(w) + r * ldw)[i];
          rows[r] = b.qs;
          d[r] = b.d;
        } else {
          rows[r] = kZero;
          d[r] = 0;
        }
      }
      std::memcpy(out, d, sizeof(d));
      transpose_dwords(rows, 4, out + kQuants);
    }
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < k / q::kQK; ++i) {
      const uint8_t* pb = panel + i * kBlockBytes;
      if constexpr (NC == 1) prefetch_ahead(pb, kBlockBytes);
      const XBlock* y[NC];
      __m256i p[NC];
      for (int c = 0; c < NC; ++c) {
        y[c] = reinterpret_cast<const XBlock*>(x + c * ldx) + i;
        p[c] = _mm256_setzero_si256();
      }
      for (int t = 0; t < 4; ++t) {
        const __m256i raw = load(pb + kQuants + 32 * t);
        const __m256i lo = _mm256_and_si256(raw, low4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
        for (int c = 0; c < NC; ++c) {
          p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(lo, bcast4(y[c]->qs + 4 * t)));
          p[c] = _mm256_add_epi16(p[c], _mm256_maddubs_epi16(hi, bcast4(y[c]->qs + 16 + 4 * t)));
        }
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb)));
      for (int c = 0; c < NC; ++c) {
        const __m256i s =
            _mm256_sub_epi32(_mm256_madd_epi16(p[c], ones), _mm256_set1_epi32(8 * y[c]->sum));
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(y[c]->d)), _mm256_cvtepi32_ps(s),
                                 acc[c]);
      }
    }
    store_tile<NC>(acc, out, ldo, nr);
  }
};

// ---- K formats against Q8_K activations ----

// Pairs of 16-bit values per row as dwords: dword r = lo[r] | hi[r] << 16, for madd against a
// broadcast pair of activation sums.
inline void pair_dwords(const int16_t lo[kPanelRows], const int16_t hi[kPanelRows], uint8_t* out) {
  for (int r = 0; r < kPanelRows; ++r) {
    std::memcpy(out + 4 * r, &lo[r], 2);
    std::memcpy(out + 4 * r + 2, &hi[r], 2);
  }
}

// Activation sums of 16 (Q8_K bsums), the pair (bsums[2u], bsums[2u+1]) in every dword.
inline __m256i bsum_pair(const q::BlockQ8_K& y, int u) {
  int32_t v;
  std::memcpy(&v, y.bsums + 2 * u, 4);
  return _mm256_set1_epi32(v);
}

// Q4_K panel super-block (256 elements of 8 rows, 1184 bytes, 8 BlockQ4_K + 32):
//   d[8], dmin[8] as halves (one cvtph gives the 8 rows' scales);
//   sc[8][8], m[8][8]: the 6-bit scale and min of group j of row r at byte 8j+r;
//   32 quant vectors, 8 per 64 elements jj: vector 8jj+t holds bytes 32jj+4t..+3 of each row's
//     qs, whose low nibbles are elements 64jj+4t.. (group 2jj) and high nibbles 64jj+32+4t..
//     (group 2jj+1).
// x = d*sc_j*q - dmin*m_j, so the row's product is d*dy*sum_j sc_j*dot_j -
// dmin*dy*sum_j m_j*(bsums[2j] + bsums[2j+1]). The scales and mins stay bytes in memory (this
// format is read once per token in decode, so its size is what counts) and are widened to
// 16-bit lanes by shuffles, per super-block.
struct Q4_KPanel {
  static constexpr size_t kScales = 32, kMins = kScales + 64, kQuants = kMins + 64;
  static constexpr size_t kBlockBytes = kQuants + 32 * 32;
  static_assert(kBlockBytes == 8 * sizeof(q::BlockQ4_K) + 32);
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(k / q::kQKK) * kBlockBytes; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<uint8_t*>(panel);
    static const uint8_t kZero[128] = {};
    for (int64_t i = 0; i < k / q::kQKK; ++i, out += kBlockBytes) {
      const uint8_t* rows[kPanelRows];
      uint16_t d[2 * kPanelRows] = {};
      uint8_t sc[8][kPanelRows] = {}, mn[8][kPanelRows] = {};
      for (int r = 0; r < kPanelRows; ++r) {
        if (r >= nr) {
          rows[r] = kZero;
          continue;
        }
        const auto& b =
            reinterpret_cast<const q::BlockQ4_K*>(static_cast<const uint8_t*>(w) + r * ldw)[i];
        rows[r] = b.qs;
        std::memcpy(&d[r], &b.d, 2);
        std::memcpy(&d[kPanelRows + r], &b.dmin, 2);
        uint8_t scales[8], mins[8];
        q::unpack_scales_mins_k4(b.scales, scales, mins);
        for (int j = 0; j < 8; ++j) {
          sc[j][r] = scales[j];
          mn[j][r] = mins[j];
        }
      }
      std::memcpy(out, d, sizeof(d));
      std::memcpy(out + kScales, sc, sizeof(sc));
      std::memcpy(out + kMins, mn, sizeof(mn));
      transpose_dwords(rows, 32, out + kQuants);
    }
  }

  // Bytes a[0..7] (group j) and b[0..7] (group j+1) of 8 rows, loaded to both 128-bit lanes.
  static __m256i bytes16(const uint8_t* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    // From bytes16: row r's byte of the first 8 in both 16-bit lanes of dword r (scales of
    // group 2jj), of the last 8 (group 2jj+1), and the pair (first, last) (mins of 2u, 2u+1).
    const __m256i pick_lo =
        _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1,  //
                         4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1);
    const __m256i pick_hi = _mm256_add_epi8(pick_lo, _mm256_set1_epi16(8));
    const __m256i pick_pair =
        _mm256_setr_epi8(0, -1, 8, -1, 1, -1, 9, -1, 2, -1, 10, -1, 3, -1, 11, -1,  //
                         4, -1, 12, -1, 5, -1, 13, -1, 6, -1, 14, -1, 7, -1, 15, -1);
    for (int64_t i = 0; i < k / q::kQKK; ++i) {
      const uint8_t* pb = panel + i * kBlockBytes;
      const q::BlockQ8_K* y[NC];
      __m256i s[NC];
      for (int c = 0; c < NC; ++c) {
        y[c] = reinterpret_cast<const q::BlockQ8_K*>(x + c * ldx) + i;
        s[c] = _mm256_setzero_si256();
      }
      // Groups 2jj and 2jj+1 share their quant vectors (low and high nibbles): one load each.
      for (int jj = 0; jj < 4; ++jj) {
        if constexpr (NC == 1) prefetch_part(pb, kBlockBytes, jj, 4);
        __m256i plo[NC], phi[NC];
        for (int c = 0; c < NC; ++c) plo[c] = phi[c] = _mm256_setzero_si256();
        for (int t = 0; t < 8; ++t) {
          const __m256i raw = load(pb + kQuants + 32 * (8 * jj + t));
          const __m256i lo = _mm256_and_si256(raw, low4);
          const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
          for (int c = 0; c < NC; ++c) {
            const int8_t* yq = y[c]->qs + 64 * jj + 4 * t;
            plo[c] = _mm256_add_epi16(plo[c], _mm256_maddubs_epi16(lo, bcast4(yq)));
            phi[c] = _mm256_add_epi16(phi[c], _mm256_maddubs_epi16(hi, bcast4(yq + 32)));
          }
        }
        const __m256i sc = bytes16(pb + kScales + 16 * jj);
        const __m256i sclo = _mm256_shuffle_epi8(sc, pick_lo);
        const __m256i schi = _mm256_shuffle_epi8(sc, pick_hi);
        for (int c = 0; c < NC; ++c) {
          s[c] = _mm256_add_epi32(s[c], _mm256_add_epi32(_mm256_madd_epi16(plo[c], sclo),
                                                         _mm256_madd_epi16(phi[c], schi)));
        }
      }
      __m256i mins[4];
      for (int u = 0; u < 4; ++u)
        mins[u] = _mm256_shuffle_epi8(bytes16(pb + kMins + 16 * u), pick_pair);
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb)));
      const __m256 dmin =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + 16)));
      for (int c = 0; c < NC; ++c) {
        // Sums of 32 as pairs (bs_{2u}, bs_{2u+1}) for the min vectors.
        const __m256i b16 = load(y[c]->bsums);
        const __m256i bs = _mm256_hadd_epi16(b16, b16);  // lane 0: bs0..3, lane 1: bs4..7
        __m256i m = _mm256_setzero_si256();
        for (int u = 0; u < 4; ++u) {
          const int idx = u < 2 ? u : u + 2;
          const __m256i pair = _mm256_permutevar8x32_epi32(bs, _mm256_set1_epi32(idx));
          m = _mm256_add_epi32(m, _mm256_madd_epi16(mins[u], pair));
        }
        const __m256 dy = _mm256_set1_ps(y[c]->d);
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, dy), _mm256_cvtepi32_ps(s[c]), acc[c]);
        acc[c] = _mm256_fnmadd_ps(_mm256_mul_ps(dmin, dy), _mm256_cvtepi32_ps(m), acc[c]);
      }
    }
    store_tile<NC>(acc, out, ldo, nr);
  }
};

// ---- Q8_0 weights against Q8_0 activations ----

// Q8_0 panel block (32 elements of 8 rows, 272 bytes, as 8 BlockQ8_0): the 8 d as halves,
// then 8 vectors, vector t holding quants 4t..4t+3 of each row.
// Both sides are signed: maddubs gets |w| (-128 becomes 128, still right as unsigned) and x
// with w's sign. A pair of products reaches 2 * 128 * 127 = 32512 in magnitude, so two of
// them may not share 16 bits: each goes through madd to 32 bits on its own.
struct Q8_0Panel {
  static constexpr size_t kBlockBytes = 16 + 8 * 32;
  static_assert(kBlockBytes == 8 * sizeof(q::BlockQ8_0));
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(k / q::kQK) * kBlockBytes; }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<uint8_t*>(panel);
    static const uint8_t kZero[q::kQK] = {};
    for (int64_t i = 0; i < k / q::kQK; ++i, out += kBlockBytes) {
      const uint8_t* rows[kPanelRows];
      uint16_t d[kPanelRows] = {};
      for (int r = 0; r < kPanelRows; ++r) {
        if (r >= nr) {
          rows[r] = kZero;
          continue;
        }
        const auto& b =
            reinterpret_cast<const q::BlockQ8_0*>(static_cast<const uint8_t*>(w) + r * ldw)[i];
        rows[r] = reinterpret_cast<const uint8_t*>(b.qs);
        std::memcpy(&d[r], &b.d, 2);
      }
      std::memcpy(out, d, sizeof(d));
      transpose_dwords(rows, 8, out + 16);
    }
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t i = 0; i < k / q::kQK; ++i) {
      const uint8_t* pb = panel + i * kBlockBytes;
      const q::BlockQ8_0* y[NC];
      __m256i s[NC];
      for (int c = 0; c < NC; ++c) {
        y[c] = reinterpret_cast<const q::BlockQ8_0*>(x + c * ldx) + i;
        s[c] = _mm256_setzero_si256();
      }
      for (int t = 0; t < 8; ++t) {
        if constexpr (NC == 1) prefetch_part(pb, kBlockBytes, t, 8);
        const __m256i wq = load(pb + 16 + 32 * t);
        const __m256i aw = _mm256_abs_epi8(wq);
        for (int c = 0; c < NC; ++c) {
          const __m256i xs = _mm256_sign_epi8(bcast4(y[c]->qs + 4 * t), wq);
          s[c] = _mm256_add_epi32(s[c], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones));
        }
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb)));
      for (int c = 0; c < NC; ++c) {
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(half_to_float(y[c]->d))),
                                 _mm256_cvtepi32_ps(s[c]), acc[c]);
      }
    }
    store_tile<NC>(acc, out, ldo, nr);
  }
};

// Q6_K panel super-block (256 elements of 8 rows, 1680 bytes, the size of the 8 rows' Q6_K
// blocks):
//   48 quant vectors, 3 per group g of 16 (offset 96g): vector j = 0..2 holds in dword r
//     elements 16g+4j..16g+4j+3 of row r in bits 0..5 of its bytes, and in bits 6..7 bits
//     2j..2j+1 of elements 16g+12..16g+15 (same byte position). An and gives the first three
//     quant vectors of the group; the fourth is the three 2-bit fields shifted together.
//   8 scale chunks of 16 int8, u = 0..7 (groups 2u, 2u+1): sc_{2u} of rows 0..3, sc_{2u+1} of
//     rows 0..3, sc_{2u} of rows 4..7, sc_{2u+1} of rows 4..7. Widened to 16 bits, unpacklo
//     and unpackhi with themselves give the madd vectors of the two groups (sc_g of row r in
//     lanes 2r and 2r+1), and one byte shuffle the pairs dword r = sc_{2u} | sc_{2u+1} << 16
//     for the activation sums.
//   d of the 8 rows as halves.
// x = d*sc_g*(q - 32): the -32 is taken off per super-block as 32*sum_g sc_g*bsums[g].
struct Q6_KPanel {
  static constexpr size_t kScales = 48 * 32, kD = kScales + 8 * 16;
  static constexpr size_t kBlockBytes = kD + 16;
  static_assert(kBlockBytes == kPanelRows * sizeof(q::BlockQ6_K));
  static size_t panel_bytes(int64_t k) { return static_cast<size_t>(k / q::kQKK) * kBlockBytes; }

  // The three vectors of group g from the rows' unpacked quants (row r at qv[r]): rows r and
  // r+4 share a 256-bit vector, so the in-lane dword transpose gives rows 0..3 and 4..7 at once.
  static void fold_group(const uint8_t (*qv)[q::kQKK], int g, uint8_t* o) {
    const __m256i last =
        _mm256_setr_epi8(12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, -1, -1, -1, -1, 12, 13, 14,
                         15, 12, 13, 14, 15, 12, 13, 14, 15, -1, -1, -1, -1);
    const __m256i shifts = _mm256_setr_epi32(6, 4, 2, 0, 6, 4, 2, 0);
    const __m256i top2 = _mm256_set1_epi8(static_cast<char>(0xC0));
    __m256i f[4];
    for (int r = 0; r < 4; ++r) {
      const __m256i x = _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(qv[r + 4] + 16 * g),
                                            reinterpret_cast<const __m128i*>(qv[r] + 16 * g));
      // byte 4j+e = q[16g+4j+e] | ((q[16g+12+e] >> 2j) & 3) << 6. Shifted within dwords, the
      // bits that cross into the next byte land in its bits 0..5, which the mask drops.
      const __m256i h =
          _mm256_and_si256(_mm256_sllv_epi32(_mm256_shuffle_epi8(x, last), shifts), top2);
      f[r] = _mm256_or_si256(x, h);
    }
    const __m256i a = _mm256_unpacklo_epi32(f[0], f[1]), b = _mm256_unpacklo_epi32(f[2], f[3]);
    const __m256i c = _mm256_unpackhi_epi32(f[0], f[1]), e = _mm256_unpackhi_epi32(f[2], f[3]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o), _mm256_unpacklo_epi64(a, b));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 32), _mm256_unpackhi_epi64(a, b));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 64), _mm256_unpacklo_epi64(c, e));
  }

  static void pack(int64_t k, const void* w, size_t ldw, int nr, void* panel) {
    auto* out = static_cast<uint8_t*>(panel);
    for (int64_t i = 0; i < k / q::kQKK; ++i, out += kBlockBytes) {
      alignas(32) uint8_t qv[kPanelRows][q::kQKK];
      int8_t sc[kPanelRows][16] = {};
      uint16_t d[kPanelRows] = {};
      for (int r = 0; r < kPanelRows; ++r) {
        if (r >= nr) {
          std::memset(qv[r], 0, sizeof(qv[r]));
          continue;
        }
        const auto& b =
            reinterpret_cast<const q::BlockQ6_K*>(static_cast<const uint8_t*>(w) + r * ldw)[i];
        std::memcpy(&d[r], &b.d, 2);
        std::memcpy(sc[r], b.scales, 16);
        unpack_q6_K_avx2(&b, qv[r]);
      }
      for (int g = 0; g < 16; ++g) fold_group(qv, g, out + 96 * g);
      for (int u = 0; u < 8; ++u) {
        int8_t* o = reinterpret_cast<int8_t*>(out + kScales + 16 * u);
        for (int r = 0; r < 4; ++r) {
          o[r] = sc[r][2 * u];
          o[4 + r] = sc[r][2 * u + 1];
          o[8 + r] = sc[4 + r][2 * u];
          o[12 + r] = sc[4 + r][2 * u + 1];
        }
      }
      std::memcpy(out + kD, d, sizeof(d));
    }
  }

  template <int NC>
  static void tile(int64_t k, const uint8_t* panel, const uint8_t* x, size_t ldx, float* out,
                   size_t ldo, int nr) {
    __m256 acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = _mm256_setzero_ps();
    const __m256i low6 = _mm256_set1_epi8(0x3F);
    // Per 128-bit lane, 16-bit lanes 0..3 (sc_{2u}) interleaved with 4..7 (sc_{2u+1}).
    const __m256i pairs = _mm256_setr_epi8(0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15, 0,
                                           1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15);
    for (int64_t i = 0; i < k / q::kQKK; ++i) {
      const uint8_t* pb = panel + i * kBlockBytes;
      const q::BlockQ8_K* y[NC];
      __m256i s[NC];
      for (int c = 0; c < NC; ++c) {
        y[c] = reinterpret_cast<const q::BlockQ8_K*>(x + c * ldx) + i;
        s[c] = _mm256_setzero_si256();
      }
      for (int u = 0; u < 8; ++u) {
        const __m256i sc = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kScales + 16 * u)));
        for (int h = 0; h < 2; ++h) {
          const int g = 2 * u + h;
          if constexpr (NC == 1) prefetch_part(pb, kBlockBytes, g, 16);
          const __m256i scv =
              h == 0 ? _mm256_unpacklo_epi16(sc, sc) : _mm256_unpackhi_epi16(sc, sc);
          const __m256i v0 = load(pb + 96 * g), v1 = load(pb + 96 * g + 32);
          const __m256i v2 = load(pb + 96 * g + 64);
          const __m256i w0 = _mm256_and_si256(v0, low6), w1 = _mm256_and_si256(v1, low6);
          const __m256i w2 = _mm256_and_si256(v2, low6);
          const __m256i w3 =
              _mm256_or_si256(_mm256_or_si256(_mm256_srli_epi16(_mm256_andnot_si256(low6, v0), 6),
                                              _mm256_srli_epi16(_mm256_andnot_si256(low6, v1), 4)),
                              _mm256_srli_epi16(_mm256_andnot_si256(low6, v2), 2));
          for (int c = 0; c < NC; ++c) {
            const int8_t* yq = y[c]->qs + 16 * g;
            const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast4(yq)),
                                                _mm256_maddubs_epi16(w1, bcast4(yq + 4)));
            const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast4(yq + 8)),
                                                _mm256_maddubs_epi16(w3, bcast4(yq + 12)));
            s[c] = _mm256_add_epi32(
                s[c], _mm256_add_epi32(_mm256_madd_epi16(p0, scv), _mm256_madd_epi16(p1, scv)));
          }
        }
      }
      __m256i corr[NC];
      for (int c = 0; c < NC; ++c) corr[c] = _mm256_setzero_si256();
      for (int u = 0; u < 8; ++u) {
        const __m256i sp = _mm256_shuffle_epi8(
            _mm256_cvtepi8_epi16(
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kScales + 16 * u))),
            pairs);
        for (int c = 0; c < NC; ++c) {
          corr[c] = _mm256_add_epi32(corr[c], _mm256_madd_epi16(sp, bsum_pair(*y[c], u)));
        }
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + kD)));
      for (int c = 0; c < NC; ++c) {
        const __m256i si = _mm256_sub_epi32(s[c], _mm256_slli_epi32(corr[c], 5));
        acc[c] = _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(y[c]->d)), _mm256_cvtepi32_ps(si),
                                 acc[c]);
      }
    }
    store_tile<NC>(acc, out, ldo, nr);
  }
};

size_t x_row_bytes_q8_K(int64_t k) { return ml::row_size(DType::Q8_K, k); }
size_t x_row_bytes_q8_0(int64_t k) { return ml::row_size(DType::Q8_0, k); }

template <class P>
constexpr PanelKernels make_panel(FromF32 from_f32, size_t (*x_row_bytes)(int64_t),
                                  bool packed_only = false) {
  return PanelKernels{from_f32, x_row_bytes, P::panel_bytes, P::pack, panel_gemm<P>, packed_only};
}

const PanelKernels kF32 = make_panel<F32Panel>(nullptr, F32Panel::x_row_bytes, true);
const PanelKernels kQ4_0 = make_panel<Q4_0Panel>(quantize_row_q8_0_sum_avx2, x_row_bytes_q8_0_sum);
const PanelKernels kQ4_K = make_panel<Q4_KPanel>(quantize_row_q8_K_avx2, x_row_bytes_q8_K);
const PanelKernels kQ6_K = make_panel<Q6_KPanel>(quantize_row_q8_K_avx2, x_row_bytes_q8_K);
const PanelKernels kQ8_0 = make_panel<Q8_0Panel>(quantize_row_q8_0_avx2, x_row_bytes_q8_0);

}  // namespace

const PanelKernels* avx2_panel_kernels(DType w) {
  switch (w) {
    case DType::F32:
      return &kF32;
    case DType::Q4_0:
      return &kQ4_0;
    case DType::Q4_K:
      return &kQ4_K;
    case DType::Q6_K:
      return &kQ6_K;
    case DType::Q8_0:
      return &kQ8_0;
    default:
      return nullptr;
  }
}

}  // namespace corral::backend::cpu::simd
