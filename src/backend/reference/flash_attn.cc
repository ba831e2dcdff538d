#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/reference/reference.h"
#include "backend/reference/tensor_access.h"

namespace corral::backend::reference {

// Plain two-pass attention, one query at a time:
//   s_j = scale * q . k_j + mask[j, t]   (-inf where causal forbids key j)
//   out = sum_j softmax(s)_j v_j
// Query head h reads key/value head h / (n_head / n_head_kv). A query that sees no key (all
// scores -inf) gets zeros, as ggml's flash attention writes. The mask broadcasts over heads and
// batches when its dims 2 and 3 are 1.
void flash_attn(const ml::Graph& g, const ml::Node& n) {
  const ml::Node& q = src(g, n, 0);
  const ml::Node& k = src(g, n, 1);
  const ml::Node& v = src(g, n, 2);
  const ml::Node* mask = has_src(n, 3) ? &src(g, n, 3) : nullptr;
  const auto& p = n.params<ml::op::FlashAttn>();
  const int64_t head_dim = q.ne[0];
  const int64_t head_dim_v = v.ne[0];
  const int64_t n_tokens = q.ne[1];
  const int64_t n_head = q.ne[2];
  const int64_t n_kv = k.ne[1];
  const int64_t group = n_head / k.ne[2];
  constexpr double kNegInf = -std::numeric_limits<double>::infinity();
  std::vector<double> s(static_cast<size_t>(n_kv));
  std::vector<double> acc(static_cast<size_t>(head_dim_v));
  for (int64_t b = 0; b < q.ne[3]; ++b) {
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t hk = h / group;
      for (int64_t t = 0; t < n_tokens; ++t) {
        double max = kNegInf;
        for (int64_t j = 0; j < n_kv; ++j) {
          double score = kNegInf;
          if (!p.causal || j <= n_kv - n_tokens + t) {
            double dot = 0.0;
            for (int64_t d = 0; d < head_dim; ++d) {
              dot += double{load(q, d, t, h, b)} * double{load(k, d, j, hk, b)};
            }
            score = dot * p.scale;
            if (mask) score += load(*mask, j, t, h % mask->ne[2], b % mask->ne[3]);
          }
          s[j] = score;
          if (score > max) max = score;
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        double sum = 0.0;
        if (max != kNegInf) {
          for (int64_t j = 0; j < n_kv; ++j) {
            const double w = std::exp(s[j] - max);
            sum += w;
            for (int64_t d = 0; d < head_dim_v; ++d) acc[d] += w * double{load(v, d, j, hk, b)};
          }
        }
        for (int64_t d = 0; d < head_dim_v; ++d) {
          store(n, d, h, t, b, sum > 0.0 ? static_cast<float>(acc[d] / sum) : 0.0f);
        }
      }
    }
  }
}

}  // namespace corral::backend::reference
