// Multi-head self-attention with grouped-query heads over a KV cache. PyTorch (transformers
// LlamaAttention):
//   q, k, v = q_proj(x), k_proj(x), v_proj(x);  q, k = rope(q), rope(k)
//   k, v = cache.update(k, v);  out = o_proj(softmax(q k^T * scale + mask) v)
// The module has no name of its own: its projections are named as GGUF names them in the block
// (attn_q, attn_k, attn_v, attn_output).
#pragma once

#include "kvcache/causal.h"
#include "nn/linear.h"
#include "nn/rope.h"

namespace corral::nn {

struct AttentionOptions {
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim_k = 0;
  int64_t head_dim_v = 0;
  float scale = 0.0f;           // 0: 1 / sqrt(head_dim_k)
  Bias bias = Bias::kOptional;  // of q, k and v
  // flash_attn, or the composed softmax(K^T Q) V (both are tested against each other).
  bool flash = true;
};

class Attention : public Module {
 public:
  Attention(Module& block, const AttentionOptions& o);

  // x [n_embd, n_tokens] at positions I32 [n_tokens] -> [n_embd, n_tokens]
  ml::Tensor forward(ml::Tensor x, ml::Tensor positions, const RoPE& rope, kvcache::Causal& cache,
                     int layer) const;

  // The attention proper, for architectures that transform q and k their own way:
  // q [head_dim_k, n_head, n_tokens], k [head_dim_k, n_head_kv, n_tokens],
  // v [head_dim_v, n_head_kv, n_tokens] -> [head_dim_v * n_head, n_tokens] (before attn_output).
  ml::Tensor attend(ml::Tensor q, ml::Tensor k, ml::Tensor v, kvcache::Causal& cache,
                    int layer) const;

  Linear attn_q, attn_k, attn_v, attn_output;

 private:
  AttentionOptions o_;
};

}  // namespace corral::nn
