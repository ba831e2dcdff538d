#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {
namespace {

// Keys scored per step: the scores of one tile live in the work buffer, never a whole row of
// n_kv (nor the n_tokens x n_kv matrix). 128 keys of a 128-wide f16 head are 32 KiB, so a tile
// stays in cache while every query head of its group uses it.
constexpr int64_t kTile = 128;

struct Dims {
  int64_t d, dv, n_kv, n_tokens, n_head, n_head_kv, b3;
  int64_t group() const { return n_head / n_head_kv; }
};

Dims dims_of(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& q = g.node(n.src[0]);
  const ml::Node& k = g.node(n.src[1]);
  const ml::Node& v = g.node(n.src[2]);
  return {q.ne[0], v.ne[0], k.ne[1], q.ne[1], q.ne[2], k.ne[2], q.ne[3]};
}

// Query tokens a unit of work takes through each K/V tile (prefill): the tile is read once for
// all of them while it is in cache.
constexpr int64_t kTokens = 8;

// Floats of scratch per thread, rounded to a cache line: scores and mask of a tile, then per
// (token, query head) of a unit its q, accumulator, running max and sum, then one K and one V
// row for strided caches.
size_t per_thread_floats(const Dims& d) {
  const size_t rows = static_cast<size_t>(kTokens * d.group());
  const size_t f = static_cast<size_t>(2 * kTile + d.d + d.dv) + rows * (d.d + d.dv + 2);
  return (f + 15) / 16 * 16;
}

// How a thread's work is cut: units of `tokens` query tokens x `heads` query heads of one KV
// head. Whole groups and blocks of tokens while that leaves every thread a unit; decode (one
// token) splits the group instead.
struct Split {
  int64_t tokens, heads, token_blocks, head_splits;
};
Split split_of(const Dims& d, int nth) {
  Split s{d.n_tokens >= kTokens * nth ? kTokens : 1, d.group(), 0, 1};
  s.token_blocks = (d.n_tokens + s.tokens - 1) / s.tokens;
  const int64_t base = d.n_head_kv * s.token_blocks * d.b3;
  for (int64_t k = 1; k <= d.group(); ++k) {
    if (d.group() % k == 0 && (base * k >= nth || k == d.group())) {
      s.head_splits = k;
      break;
    }
  }
  s.heads = d.group() / s.head_splits;
  return s;
}

// Query tokens up to which every thread finds every token's visible keys itself: a decode step's
// few mask rows are scanned in less time than the threads would take to wait for each other
// (on a busy machine a hand-off can wait for a scheduler slice). A prefill's many rows are
// shared out, and the threads then wait.
constexpr int64_t kOwnRanges = 16;

// Bytes at the start of the work buffer for each query token's visible keys [first, end), one
// copy per thread.
size_t ranges_bytes(const Dims& d) {
  return (static_cast<size_t>(2 * d.n_tokens) * sizeof(int64_t) + 63) / 64 * 64;
}

// The keys a mask row leaves visible lie in [first, end): the first and one past the last entry
// that is not -inf (an empty range when every entry is). Sixteen entries are compared at once
// (as bit patterns, so the loop vectorizes): a batch of several sequences gives each a range of its
// own far from the start of the cache, and the cells before it are skipped by this scan alone.
void visible_range(const float* row, int64_t n, int64_t& first, int64_t& end) {
  constexpr uint32_t kNegInf = 0xff800000u;
  constexpr int64_t kBlock = 16;
  const auto hidden_block = [&](int64_t c) {
    uint32_t diff = 0;
    for (int64_t j = 0; j < kBlock; ++j) {
      uint32_t bits;
      std::memcpy(&bits, row + c + j, sizeof bits);
      diff |= bits ^ kNegInf;
    }
    return diff == 0;
  };
  const auto hidden = [&](int64_t c) { return std::bit_cast<uint32_t>(row[c]) == kNegInf; };
  int64_t c = 0;
  while (c + kBlock <= n && hidden_block(c)) c += kBlock;
  while (c < n && hidden(c)) ++c;
  first = c;
  int64_t e = n;
  while (e - kBlock >= first && hidden_block(e - kBlock)) e -= kBlock;
  while (e > first && hidden(e - 1)) --e;
  end = e;
}

}  // namespace

size_t flash_attn_work_size(const ml::Graph& g, const ml::Node& n, int nth, simd::Isa) {
  const Dims d = dims_of(g, n);
  return (ranges_bytes(d) + per_thread_floats(d) * sizeof(float)) * static_cast<size_t>(nth);
}

// Online softmax (the FlashAttention recurrence) per (query token, head): running maximum m,
// running sum s and accumulator acc = sum_j e^{x_j - m} v_j, rescaled by e^{m_old - m_new}
// whenever a tile raises the maximum; the output is acc / s. One pass over K and V, tile by
// tile, with the query heads that share a KV head (grouped-query attention) and a block of
// query tokens taking turns on each tile while it is in cache.
void flash_attn(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& q = g.node(n.src[0]);
  const ml::Node& k = g.node(n.src[1]);
  const ml::Node& vt = g.node(n.src[2]);
  const ml::Node* mask = n.src[3] >= 0 ? &g.node(n.src[3]) : nullptr;
  const auto& p = n.params<ml::op::FlashAttn>();
  const Dims d = dims_of(g, n);
  const vec::Ops& v = ctx.vops();
  const bool k_half = k.dtype == ml::DType::F16, v_half = vt.dtype == ml::DType::F16;
  const bool k_packed = k.nb[0] == ml::type_size(k.dtype);
  const bool v_packed = vt.nb[0] == ml::type_size(vt.dtype);
  const auto dot_rows = k_half ? v.dot_rows_f16 : v.dot_rows;
  const auto acc_rows = v_half ? v.acc_rows_f16 : v.acc_rows;

  const Split sp = split_of(d, ctx.nth);
  const int64_t hp = sp.heads;

  // Each query token's visible keys, found once for all heads. Tiles outside them are skipped
  // without reading their mask; the tiles visited, and the order of the sums in them, are the
  // same as when every tile's mask is read, so the result does not change.
  const bool ranged =
      mask != nullptr && mask->dtype == ml::DType::F32 && mask->nb[0] == sizeof(float);
  const bool own = d.n_tokens <= kOwnRanges;
  auto* const ranges = static_cast<char*>(ctx.wdata);
  // [first, end) of token t at 2t, 2t + 1: this thread's copy, or the first (shared) one.
  auto* range = reinterpret_cast<int64_t*>(ranges + (own ? ctx.ith : 0) * ranges_bytes(d));
  if (ranged) {
    int64_t r0 = 0, r1 = d.n_tokens;
    if (!own) ctx.split(d.n_tokens, r0, r1);
    for (int64_t t = r0; t < r1; ++t) {
      visible_range(reinterpret_cast<const float*>(row_ptr(*mask, t, 0, 0)), d.n_kv, range[2 * t],
                    range[2 * t + 1]);
    }
    if (!own) ctx.barrier();
  }
  float* scores =
      reinterpret_cast<float*>(ranges + ctx.nth * ranges_bytes(d)) + per_thread_floats(d) * ctx.ith;
  float* mbuf = scores + kTile;
  float* ktmp = mbuf + kTile;                   // one K row as f32 (strided K)
  float* vtmp = ktmp + d.d;                     // one V row as f32 (strided V)
  float* qs = vtmp + d.dv;                      // per (token, head) row r: q at qs + r * d
  float* acc = qs + kTokens * d.group() * d.d;  // accumulator at acc + r * dv
  float* m = acc + kTokens * d.group() * d.dv;  // running maximum
  float* s = m + kTokens * d.group();           // running sum

  int64_t u0, u1;
  ctx.split(d.n_head_kv * sp.head_splits * sp.token_blocks * d.b3, u0, u1);
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t hk = u % d.n_head_kv;
    const int64_t sub = (u / d.n_head_kv) % sp.head_splits;
    const int64_t tb = (u / (d.n_head_kv * sp.head_splits)) % sp.token_blocks;
    const int64_t b = u / (d.n_head_kv * sp.head_splits * sp.token_blocks);
    const int64_t h0 = hk * d.group() + sub * hp;
    const int64_t t0 = tb * sp.tokens;
    const int64_t nt = std::min(sp.tokens, d.n_tokens - t0);

    for (int64_t r = 0; r < nt * hp; ++r) {
      const int64_t t = t0 + r / hp, h = h0 + r % hp;
      load_f32(ctx.vops(), ml::DType::F32, row_ptr(q, t, h, b), q.nb[0], qs + r * d.d, d.d);
      v.scale(qs + r * d.d, qs + r * d.d, d.d, p.scale, 0.0f);
      std::fill(acc + r * d.dv, acc + (r + 1) * d.dv, 0.0f);
      m[r] = -INFINITY;
      s[r] = 0.0f;
    }
    // Query t sees keys [0, kv_end(t)); the last token of the block sees the most.
    auto kv_end = [&](int64_t t) { return p.causal ? d.n_kv - d.n_tokens + t + 1 : d.n_kv; };
    // The tiles any token of the block may see (whole tiles: their bounds stay multiples of
    // kTile).
    int64_t c_first = 0, c_end = kv_end(t0 + nt - 1);
    if (ranged) {
      c_first = c_end;
      int64_t last = 0;
      for (int64_t t = t0; t < t0 + nt; ++t) {
        if (range[2 * t] >= range[2 * t + 1]) continue;
        c_first = std::min(c_first, range[2 * t]);
        last = std::max(last, range[2 * t + 1]);
      }
      c_first = c_first / kTile * kTile;
      c_end = std::min(c_end, last);
    }

    for (int64_t c0 = c_first; c0 < c_end; c0 += kTile) {
      const char* kp = row_ptr(k, c0, hk, b);
      const char* vp = row_ptr(vt, c0, hk, b);
      for (int64_t ti = 0; ti < nt; ++ti) {
        const int64_t t = t0 + ti;
        int64_t len = std::min(kTile, kv_end(t) - c0);
        // A tile before or after what this token sees is all -inf: skipped as below.
        if (ranged && (c0 + kTile <= range[2 * t] || c0 >= range[2 * t + 1])) continue;
        if (len <= 0) continue;
        if (mask) {
          load_f32(ctx.vops(), mask->dtype, row_ptr(*mask, t, 0, 0) + c0 * mask->nb[0], mask->nb[0],
                   mbuf, len);
          // Masked keys at the end of the tile are left out (all of them: the tile is skipped).
          // Besides the work this saves (the cells of other sequences, the padding of n_kv), a
          // query's sums then run over the same keys however far n_kv reaches, so its result
          // does not depend on what else is in the cache or the batch.
          while (len > 0 && mbuf[len - 1] == -INFINITY) --len;
          if (len == 0) continue;
        }
        for (int64_t i = 0; i < hp; ++i) {
          const int64_t r = ti * hp + i;
          const float* qi = qs + r * d.d;
          float* ai = acc + r * d.dv;
          if (k_packed) {
            dot_rows(kp, k.nb[1], len, qi, d.d, scores);
          } else {
            for (int64_t j = 0; j < len; ++j) {
              load_f32(ctx.vops(), k.dtype, kp + j * k.nb[1], k.nb[0], ktmp, d.d);
              scores[j] = v.dot(ktmp, qi, d.d);
            }
          }
          if (mask) v.add(scores, mbuf, scores, len);
          const float tile_max = v.max(scores, len);
          if (tile_max > m[r]) {
            const float f = m[r] == -INFINITY ? 0.0f : std::exp(m[r] - tile_max);
            v.scale(ai, ai, d.dv, f, 0.0f);
            s[r] *= f;
            m[r] = tile_max;
          }
          s[r] += v.exp_sum(scores, scores, len, m[r]);
          if (v_packed) {
            acc_rows(vp, vt.nb[1], len, scores, d.dv, ai);
          } else {
            for (int64_t j = 0; j < len; ++j) {
              if (scores[j] == 0.0f) continue;
              load_f32(ctx.vops(), vt.dtype, vp + j * vt.nb[1], vt.nb[0], vtmp, d.dv);
              v.axpy(scores[j], vtmp, ai, d.dv);
            }
          }
        }
      }
    }
    // A query that sees no key (all masked) gets zeros rather than 0/0.
    for (int64_t r = 0; r < nt * hp; ++r) {
      auto* out = reinterpret_cast<float*>(row_ptr(n, h0 + r % hp, t0 + r / hp, b));
      v.scale(acc + r * d.dv, out, d.dv, s[r] > 0.0f ? 1.0f / s[r] : 0.0f, 0.0f);
    }
  }
}

}  // namespace corral::backend::cpu
