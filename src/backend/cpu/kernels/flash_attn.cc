#include <algorithm>
#include <cmath>
#include <cstdint>

#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/kernels/rows.h"
#include "backend/cpu/kernels/vec.h"

namespace corral::backend::cpu {
namespace {

// Keys scored per step: the scores of one tile live in the work buffer, never a whole row of
// n_kv (nor the n_tokens x n_kv matrix).
constexpr int64_t kTile = 128;

struct Dims {
  int64_t d, dv, n_kv, n_tokens, n_head, n_head_kv, b3;
};

Dims dims_of(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& q = g.node(n.src[0]);
  const ml::Node& k = g.node(n.src[1]);
  const ml::Node& v = g.node(n.src[2]);
  return {q.ne[0], v.ne[0], k.ne[1], q.ne[1], q.ne[2], k.ne[2], q.ne[3]};
}

// Floats of scratch per thread, rounded to a cache line: scores, q, the output accumulator and
// one K and one V row for strided caches.
size_t per_thread_floats(const Dims& d) {
  const size_t f = static_cast<size_t>(kTile + 2 * d.d + 2 * d.dv);
  return (f + 15) / 16 * 16;
}

// A K or V row as f32-or-f16 pointers; strided rows are first packed into `tmp`.
struct RowRef {
  const float* f32;
  const uint16_t* f16;
};
RowRef kv_row(const ml::Node& t, int64_t i1, int64_t i2, int64_t i3, float* tmp) {
  const char* p = row_ptr(t, i1, i2, i3);
  const size_t esize = ml::type_size(t.dtype);
  if (t.nb[0] != esize) {
    load_f32(t.dtype, p, t.nb[0], tmp, t.ne[0]);
    return {tmp, nullptr};
  }
  if (t.dtype == ml::DType::F16) return {nullptr, reinterpret_cast<const uint16_t*>(p)};
  return {reinterpret_cast<const float*>(p), nullptr};
}

}  // namespace

size_t flash_attn_work_size(const ml::Graph& g, const ml::Node& n, int nth) {
  return per_thread_floats(dims_of(g, n)) * sizeof(float) * static_cast<size_t>(nth);
}

// Online softmax (the FlashAttention recurrence) per (query token, head): running maximum M,
// running sum S and accumulator acc = sum_j e^{s_j - M} v_j, rescaled by e^{M_old - M_new}
// whenever a tile raises the maximum; the output is acc / S. One pass over K and V.
void flash_attn(const KernelContext& ctx, const ml::Graph& g, const ml::Node& n) {
  const ml::Node& q = g.node(n.src[0]);
  const ml::Node& k = g.node(n.src[1]);
  const ml::Node& vt = g.node(n.src[2]);
  const ml::Node* mask = n.src[3] >= 0 ? &g.node(n.src[3]) : nullptr;
  const auto& p = n.params<ml::op::FlashAttn>();
  const Dims d = dims_of(g, n);
  const int64_t group = d.n_head / d.n_head_kv;
  const vec::Ops& v = vec::ops();

  float* base = static_cast<float*>(ctx.wdata) + per_thread_floats(d) * ctx.ith;
  float* scores = base;
  float* qs = scores + kTile;
  float* acc = qs + d.d;
  float* ktmp = acc + d.dv;
  float* vtmp = ktmp + d.d;

  int64_t u0, u1;
  ctx.split(d.n_head * d.n_tokens * d.b3, u0, u1);
  for (int64_t u = u0; u < u1; ++u) {
    // Heads vary fastest so neighbouring units share a KV head (grouped-query attention).
    const int64_t h = u % d.n_head;
    const int64_t t = (u / d.n_head) % d.n_tokens;
    const int64_t b = u / (d.n_head * d.n_tokens);
    const int64_t hk = h / group;

    load_f32(ml::DType::F32, row_ptr(q, t, h, b), q.nb[0], qs, d.d);
    v.scale(qs, qs, d.d, p.scale, 0.0f);
    std::fill(acc, acc + d.dv, 0.0f);
    const int64_t kv_end = p.causal ? d.n_kv - d.n_tokens + t + 1 : d.n_kv;
    const char* mrow = mask ? row_ptr(*mask, t, 0, 0) : nullptr;

    float m = -INFINITY, s = 0.0f;
    for (int64_t c0 = 0; c0 < kv_end; c0 += kTile) {
      const int64_t len = std::min(kTile, kv_end - c0);
      if (mrow) load_f32(mask->dtype, mrow + c0 * mask->nb[0], mask->nb[0], scores, len);
      for (int64_t j = 0; j < len; ++j) {
        const float bias = mrow ? scores[j] : 0.0f;
        if (bias == -INFINITY) continue;  // masked: skip the dot product
        const RowRef kr = kv_row(k, c0 + j, hk, b, ktmp);
        const float dot = kr.f16 ? v.dot_f16(kr.f16, qs, d.d) : v.dot(kr.f32, qs, d.d);
        scores[j] = dot + bias;
      }
      const float tile_max = v.max(scores, len);
      if (tile_max == -INFINITY) continue;
      if (tile_max > m) {
        const float f = m == -INFINITY ? 0.0f : std::exp(m - tile_max);
        if (f != 1.0f) v.scale(acc, acc, d.dv, f, 0.0f);
        s *= f;
        m = tile_max;
      }
      s += v.exp_sum(scores, scores, len, m);
      for (int64_t j = 0; j < len; ++j) {
        if (scores[j] == 0.0f) continue;
        const RowRef vr = kv_row(vt, c0 + j, hk, b, vtmp);
        if (vr.f16) {
          v.axpy_f16(scores[j], vr.f16, acc, d.dv);
        } else {
          v.axpy(scores[j], vr.f32, acc, d.dv);
        }
      }
    }
    // A query that sees no key (all masked) gets zeros rather than 0/0.
    auto* out = reinterpret_cast<float*>(row_ptr(n, h, t, b));
    v.scale(acc, out, d.dv, s > 0.0f ? 1.0f / s : 0.0f, 0.0f);
  }
}

}  // namespace corral::backend::cpu
