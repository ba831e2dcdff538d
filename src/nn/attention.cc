#include "nn/attention.h"

#include <cmath>

namespace corral::nn {

Attention::Attention(Module& block, const AttentionOptions& o)
    : Module(block, ""),
      attn_q(*this, "attn_q", o.n_embd, o.n_head * o.head_dim_k, o.bias),
      attn_k(*this, "attn_k", o.n_embd, o.n_head_kv * o.head_dim_k, o.bias),
      attn_v(*this, "attn_v", o.n_embd, o.n_head_kv * o.head_dim_v, o.bias),
      attn_output(*this, "attn_output", o.n_head * o.head_dim_v, o.n_embd),
      o_(o) {
  if (o_.scale == 0.0f) o_.scale = 1.0f / std::sqrt(static_cast<float>(o_.head_dim_k));
}

ml::Tensor Attention::forward(ml::Tensor x, ml::Tensor positions, const RoPE& rope,
                              kvcache::Causal& cache, int layer) const {
  const int64_t n_tokens = x.ne(1);
  ml::Tensor q = ml::reshape(attn_q.forward(x), {o_.head_dim_k, o_.n_head, n_tokens});
  ml::Tensor k = ml::reshape(attn_k.forward(x), {o_.head_dim_k, o_.n_head_kv, n_tokens});
  ml::Tensor v = ml::reshape(attn_v.forward(x), {o_.head_dim_v, o_.n_head_kv, n_tokens});
  q = rope.forward(q, positions);
  k = rope.forward(k, positions);
  return attn_output.forward(attend(q, k, v, cache, layer));
}

ml::Tensor Attention::attend(ml::Tensor q, ml::Tensor k, ml::Tensor v, kvcache::Causal& cache,
                             int layer) const {
  const int64_t n_tokens = q.ne(2);
  const auto cached = cache.update(layer, k, v);
  ml::Tensor qh = ml::permute(q, 0, 2, 1, 3);  // [head_dim_k, n_tokens, n_head]
  if (o_.flash) {
    // -> [head_dim_v, n_head, n_tokens]
    ml::Tensor out = ml::flash_attn(qh, cached.k, cached.v, cached.mask, o_.scale, false);
    return ml::reshape(out, {o_.head_dim_v * o_.n_head, n_tokens});
  }
  // scores [n_kv, n_tokens, n_head]; consecutive query heads share a KV head.
  ml::Tensor kq = ml::mul_mat(cached.k, ml::cont(qh));
  kq = ml::softmax(kq, cached.mask, o_.scale);
  ml::Tensor vt = ml::cont(ml::transpose(cached.v));        // [n_kv, head_dim_v, n_head_kv]
  ml::Tensor kqv = ml::mul_mat(vt, kq);                     // [head_dim_v, n_tokens, n_head]
  ml::Tensor out = ml::cont(ml::permute(kqv, 0, 2, 1, 3));  // [head_dim_v, n_head, n_tokens]
  return ml::reshape(out, {o_.head_dim_v * o_.n_head, n_tokens});
}

}  // namespace corral::nn
