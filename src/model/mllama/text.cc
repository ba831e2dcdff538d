// MllamaTextModel and MllamaForCausalLM (transformers models/mllama/modeling_mllama.py): llama's
// decoder with cross-attention layers at cross_attention_layers. A cross-attention layer attends
// from the text to the keys and values of one image (computed once, when the image is encoded)
// and adds attention and MLP each through a tanh gate:
//   h = x + attn_gate.tanh() * o_proj(attn(q_norm(q_proj(norm(x))), k_norm(k_proj(img)), v))
//   y = h + mlp_gate.tanh() * mlp(norm(h)) * full_text_row_masked_out_mask
// Which image a token sees: Batch::cross (the latest image of its sequence at or before it). A
// token before the first image of its sequence in the same batch attends to that image without
// its MLP, as transformers computes such rows when the prompt holds an image; a token of a
// sequence with no image in the batch passes the layer unchanged (transformers skips the layer
// when there are no cross-attention states). The first rule depends on the batch: a prompt
// prefilled in two batches, the image in the second, differs there from one prefilled at once.
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "model/mllama/mllama.h"

namespace corral::model::mllama {
namespace {

// tanh of a scalar gate, read from the file's mapping when the graph is recorded: the value is
// fixed, and the op vocabulary has no tanh (Ollama's files store these two gates before tanh).
float tanh_gate(const nn::Weight& w) {
  float v;
  std::memcpy(&v, w.info()->data, sizeof v);
  return std::tanh(v);
}

}  // namespace

ml::Tensor SelfBlock::forward(ml::Tensor x, ml::Tensor positions, const nn::RoPE& rope,
                              kvcache::Causal& cache, int layer) const {
  x = ml::add(x, attn.forward(attn_norm.forward(x), positions, rope, cache, layer));
  ml::Tensor h = ffn_norm.forward(x);
  h = ffn_down.forward(ml::swiglu(ffn_gate.forward(h), ffn_up.forward(h)));  // [n_embd, n]
  return ml::add(x, h);
}

CrossBlock::CrossBlock(nn::Module& parent, int index, const TextOptions& o)
    : Module(parent, std::to_string(index)),
      o(o),
      cross_attn_attn_gate(*this, "cross_attn_attn_gate", nn::WeightSpec({1}).f32()),
      cross_attn_mlp_gate(*this, "cross_attn_mlp_gate", nn::WeightSpec({1}).f32()) {}

std::pair<ml::Tensor, ml::Tensor> CrossBlock::keys_values(ml::Tensor states) const {
  const int64_t n_kv = states.ne(1), n_head_kv = o.config.n_head_kv;
  ml::Tensor k = ml::reshape(cross_attn_k_proj.forward(states), {head_dim(), n_head_kv, n_kv});
  k = cross_attn_k_norm.forward(k);
  ml::Tensor v = ml::reshape(cross_attn_v_proj.forward(states), {head_dim(), n_head_kv, n_kv});
  return {ml::cont(ml::permute(k, 0, 2, 1, 3)), ml::cont(ml::permute(v, 0, 2, 1, 3))};
}

ml::Tensor CrossBlock::forward(ml::Tensor x, ml::Tensor k, ml::Tensor v, bool mlp) const {
  const int64_t n = x.ne(1), n_head = o.config.n_head;
  ml::Tensor q =
      ml::reshape(cross_attn_q_proj.forward(attn_norm.forward(x)), {head_dim(), n_head, n});
  q = ml::permute(cross_attn_q_norm.forward(q), 0, 2, 1, 3);  // [head_dim, n, n_head]
  ml::Tensor a = ml::flash_attn(q, k, v, {}, 1.0f / std::sqrt(static_cast<float>(head_dim())),
                                false);  // [head_dim, n_head, n]
  a = cross_attn_o_proj.forward(ml::reshape(a, {head_dim() * n_head, n}));
  x = ml::add(x, ml::scale(a, tanh_gate(cross_attn_attn_gate)));
  if (!mlp) return x;
  ml::Tensor h = ffn_norm.forward(x);
  h = ffn_down.forward(ml::swiglu(ffn_gate.forward(h), ffn_up.forward(h)));
  return ml::add(x, ml::scale(h, tanh_gate(cross_attn_mlp_gate)));
}

TextModel::TextModel(nn::Module& parent, const TextOptions& o)
    : Module(parent, ""),
      o(o),
      token_embd(*this, "token_embd", o.config.n_embd),
      output_norm(*this, "output_norm", o.config.n_embd, o.eps),
      output(*this, "output", o.config.n_embd, o.n_output, nn::Bias::kOptional, "token_embd"),
      rope_freqs(*this, "rope_freqs", o.rope) {
  for (int il = 0; il < o.config.n_layer; ++il) {
    if (o.is_cross(il)) {
      auto b = std::make_unique<CrossBlock>(blk, il, o);
      cross_.push_back(b.get());
      blocks.push_back(std::move(b));
    } else {
      blocks.push_back(std::make_unique<SelfBlock>(blk, il, o));
    }
  }
  rope_freqs.set_computed_factors(o.freq_factors);
}

ml::Tensor TextModel::cross_layer(const CrossBlock& b, ml::Tensor x, const Batch& batch) const {
  ml::Graph& g = *x.graph();
  size_t index = 0;
  while (cross_[index] != &b) ++index;

  // Each token's image and whether its MLP row counts; a backward pass finds, for a token
  // before any image, the first image of its sequence later in the batch.
  const size_t n = batch.tokens.size();
  std::vector<const CrossStates*> image(n);
  std::vector<char> mlp(n);
  std::unordered_map<int32_t, const CrossStates*> next;
  for (size_t i = n; i-- > 0;) {
    const int32_t seq = batch.seq_ids[i];
    if (const ImageStates* s = batch.cross[i]) {
      const auto* c = dynamic_cast<const CrossStates*>(s);
      if (c == nullptr || c->k.size() != cross_.size()) {
        throw std::invalid_argument("mllama: a batch token's image was not encoded by this model");
      }
      next[seq] = c;
      image[i] = c;
      mlp[i] = 1;
    } else if (const auto it = next.find(seq); it != next.end()) {
      image[i] = it->second;
    }
  }

  const int64_t n_embd = x.ne(0), head_dim = o.config.head_dim_k, n_head_kv = o.config.n_head_kv;
  ml::Tensor out;
  for (size_t first = 0; first < n;) {
    size_t end = first + 1;
    while (end < n && image[end] == image[first] && mlp[end] == mlp[first]) ++end;
    const int64_t len = static_cast<int64_t>(end - first);
    ml::Tensor piece = ml::view(x, {n_embd, len, 1, 1},
                                {x.nb(0), x.nb(1), x.nb(1) * len, x.nb(1) * len}, first * x.nb(1));
    if (const CrossStates* s = image[first]) {
      const ml::Shape ne{head_dim, s->n_kv, n_head_kv, 1};
      ml::Tensor k = g.leaf(ml::DType::F32, ne, const_cast<float*>(s->k[index].data()), "cross_k");
      ml::Tensor v = g.leaf(ml::DType::F32, ne, const_cast<float*>(s->v[index].data()), "cross_v");
      piece = b.forward(piece, k, v, mlp[first] != 0);
    }
    out = out.valid() ? ml::concat(out, piece, 1) : piece;
    first = end;
  }
  return out;
}

ml::Tensor TextModel::forward(const Inputs& in, kvcache::Causal& cache) const {
  ml::Tensor x = token_embd.forward(in.tokens);  // [n_embd, n_tokens]
  x.set_name("token_embd.out");
  const bool images = in.batch != nullptr && !in.batch->cross.empty();
  for (size_t il = 0; il < blocks.size(); ++il) {
    if (const auto* c = dynamic_cast<const CrossBlock*>(blocks[il].get())) {
      if (images) x = cross_layer(*c, x, *in.batch);
      continue;
    }
    const auto& b = static_cast<const SelfBlock&>(*blocks[il]);
    x = b.forward(x, in.positions, rope_freqs, cache, static_cast<int>(il));
    x.set_name("blk." + std::to_string(il) + ".out");  // `corral debug tensors` shows it
  }
  if (in.outputs.valid()) x = ml::get_rows(x, in.outputs);  // [n_embd, n_outputs]
  x = output_norm.forward(x);
  x.set_name("output_norm.out");
  if (in.output == Output::kEmbeddings) return x;
  ml::Tensor logits = output.forward(x);  // [n_output, n_outputs]
  if (o.config.n_vocab == o.n_output) return logits;
  // The tokens past the text vocabulary get -inf: 0 * logit - inf.
  const int64_t extra = o.config.n_vocab - o.n_output, n = logits.ne(1);
  ml::Tensor none =
      ml::cont(ml::view(logits, {extra, n, 1, 1},
                        {logits.nb(0), logits.nb(1), logits.nb(1) * n, logits.nb(1) * n}, 0));
  return ml::concat(logits, ml::scale(none, 0.0f, -INFINITY), 0);  // [n_vocab, n_outputs]
}

}  // namespace corral::model::mllama
