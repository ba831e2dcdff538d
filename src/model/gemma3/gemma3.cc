// Gemma 3 (text). Mirrors transformers' models/gemma3/modeling_gemma3.py (Gemma3ForCausalLM):
// embeddings scaled by sqrt(n_embd); sandwich norms (attn_norm before attention and
// post_attention_norm after it, ffn_norm and post_ffw_norm around the feed-forward); a
// GELU(tanh)-gated feed-forward; an RMSNorm over each head of Q and K before the NeoX rotation;
// attention scaled by query_pre_attn_scalar^-0.5; layers that attend to a sliding window of
// positions, with their own RoPE base, between full-attention layers; tied output.
// Gemma's RMSNorm scales by (1 + weight): as llama.cpp's converter does, the GGUF stores
// weight + 1, so the norms here are plain RMSNorms and files from llama.cpp and Ollama load as
// they are.
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model/model.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/rope.h"

namespace corral::model::gemma3 {
namespace {

// Which layers use the sliding window: attention.sliding_window_pattern is a per-layer array
// of booleans (true: sliding) or a period n (every n-th layer is full); without it llama.cpp's
// Gemma 3 period of 6.
std::vector<bool> sliding_layers(const ml::gguf::File& file, const Keys& k, int n_layer) {
  std::vector<bool> sliding(static_cast<size_t>(n_layer));
  const ml::gguf::Value* v = file.metadata().find(k.full("attention.sliding_window_pattern"));
  if (v != nullptr && v->is<ml::gguf::Array>()) {
    const auto& items = v->as_array().items;
    if (items.size() != sliding.size()) {
      throw std::runtime_error(file.source() + ": " + k.full("attention.sliding_window_pattern") +
                               " has " + std::to_string(items.size()) + " entries for " +
                               std::to_string(n_layer) + " layers");
    }
    for (size_t i = 0; i < items.size(); ++i) {
      const auto b =
          items[i].is<bool>() ? std::optional<int64_t>(items[i].as<bool>()) : items[i].as_integer();
      if (!b) {
        throw std::runtime_error(file.source() + ": " + k.full("attention.sliding_window_pattern") +
                                 " must hold booleans");
      }
      sliding[i] = *b != 0;
    }
    return sliding;
  }
  const int64_t period = k.positive_or("attention.sliding_window_pattern", 6, 1 << 16);
  for (int il = 0; il < n_layer; ++il) sliding[static_cast<size_t>(il)] = (il + 1) % period != 0;
  return sliding;
}

struct Options {
  Config config;
  int64_t n_ff;
  float eps;
  float attn_scale;
  ml::op::Rope rope_full, rope_sliding;

  explicit Options(const ml::gguf::File& file) {
    const Keys k(file, "gemma3");
    Config& c = config;
    c.architecture = "gemma3";
    c.n_layer = static_cast<int>(k.positive("block_count"));
    c.n_embd = k.positive("embedding_length");
    c.n_vocab = vocab_size(file);
    c.n_head = k.positive("attention.head_count");
    c.n_head_kv = k.positive_or("attention.head_count_kv", c.n_head);
    c.head_dim_k = k.positive_or("attention.key_length", 256);
    c.head_dim_v = k.positive_or("attention.value_length", c.head_dim_k);
    c.n_ctx_train = k.positive_or("context_length", 131072);
    c.sliding_window = static_cast<int32_t>(k.positive("attention.sliding_window"));
    c.sliding_layers = sliding_layers(file, k, c.n_layer);
    n_ff = k.positive("feed_forward_length");
    eps = k.number_or("attention.layer_norm_rms_epsilon", 1e-6f);
    // query_pre_attn_scalar is not a GGUF key of llama.cpp: it equals head_dim except in the
    // 27B model (62 layers), where it is n_embd / n_head, as llama.cpp's loader assumes. Our
    // converter writes it when it differs from head_dim.
    const float scalar =
        k.number_or("attention.query_pre_attn_scalar",
                    static_cast<float>(c.n_layer == 62 ? c.n_embd / c.n_head : c.head_dim_k));
    if (!(scalar > 0.0f)) {
      throw std::runtime_error(file.source() +
                               ": gemma3.attention.query_pre_attn_scalar must be "
                               "positive");
    }
    attn_scale = 1.0f / std::sqrt(scalar);

    rope_full.mode = ml::op::RopeMode::kNeox;
    rope_full.n_dims = static_cast<int32_t>(k.positive_or("rope.dimension_count", c.head_dim_k));
    // Ollama's files name the bases rope.global.freq_base and rope.local.freq_base.
    rope_full.freq_base =
        k.number_or("rope.freq_base", k.number_or("rope.global.freq_base", 1000000.0f));
    rope_full.n_ctx_orig = static_cast<int32_t>(c.n_ctx_train);
    rope_sliding = rope_full;
    rope_sliding.freq_base =
        k.number_or("rope.freq_base_swa", k.number_or("rope.local.freq_base", 10000.0f));
    // Linear scaling (the 4B..27B models) applies to the full-attention layers only.
    if (k.string_or("rope.scaling.type", "none") == "linear") {
      rope_full.freq_scale = 1.0f / k.number("rope.scaling.factor");
    }
  }

  nn::AttentionOptions attention() const {
    return {.n_embd = config.n_embd,
            .n_head = config.n_head,
            .n_head_kv = config.n_head_kv,
            .head_dim_k = config.head_dim_k,
            .head_dim_v = config.head_dim_v,
            .scale = attn_scale};
  }
};

struct Block : nn::Module {
  Block(nn::Module& parent, int index, const Options& o)
      : Module(parent, std::to_string(index)), o(o) {}

  const Options& o;
  nn::RMSNorm attn_norm{*this, "attn_norm", o.config.n_embd, o.eps};
  nn::Attention attn{*this, o.attention()};
  nn::RMSNorm attn_q_norm{*this, "attn_q_norm", o.config.head_dim_k, o.eps};
  nn::RMSNorm attn_k_norm{*this, "attn_k_norm", o.config.head_dim_k, o.eps};
  nn::RMSNorm post_attention_norm{*this, "post_attention_norm", o.config.n_embd, o.eps};
  nn::RMSNorm ffn_norm{*this, "ffn_norm", o.config.n_embd, o.eps};
  nn::Linear ffn_gate{*this, "ffn_gate", o.config.n_embd, o.n_ff};
  nn::Linear ffn_up{*this, "ffn_up", o.config.n_embd, o.n_ff};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.config.n_embd};
  nn::RMSNorm post_ffw_norm{*this, "post_ffw_norm", o.config.n_embd, o.eps};

  // x [n_embd, n_tokens] -> [n_embd, n_tokens]; the cache knows which layers slide.
  ml::Tensor forward(ml::Tensor x, ml::Tensor positions, const nn::RoPE& rope,
                     kvcache::Causal& cache, int layer) const {
    const Config& c = o.config;
    const ml::Tensor h = attn_norm.forward(x);
    const int64_t n_tokens = h.ne(1);
    ml::Tensor q = ml::reshape(attn.attn_q.forward(h), {c.head_dim_k, c.n_head, n_tokens});
    ml::Tensor k = ml::reshape(attn.attn_k.forward(h), {c.head_dim_k, c.n_head_kv, n_tokens});
    ml::Tensor v = ml::reshape(attn.attn_v.forward(h), {c.head_dim_v, c.n_head_kv, n_tokens});
    q = rope.forward(attn_q_norm.forward(q), positions);
    k = rope.forward(attn_k_norm.forward(k), positions);
    ml::Tensor a = attn.attn_output.forward(attn.attend(q, k, v, cache, layer));
    x = ml::add(x, post_attention_norm.forward(a));

    ml::Tensor f = ffn_norm.forward(x);
    f = ml::mul(ml::gelu(ffn_gate.forward(f), ml::op::GeluForm::kTanh), ffn_up.forward(f));
    f = post_ffw_norm.forward(ffn_down.forward(f));  // [n_embd, n_tokens]
    return ml::add(x, f);
  }
};

class Gemma3 final : public Model {
 public:
  explicit Gemma3(Options o) : Model(o.config), o_(std::move(o)) {
    for (int il = 0; il < o_.config.n_layer; ++il) {
      blocks_.push_back(std::make_unique<Block>(blk, il, o_));
    }
  }

  ml::Tensor shift(ml::Tensor keys, ml::Tensor delta, int layer) const override {
    return rope_for(layer).forward(keys, delta);
  }

 private:
  const nn::RoPE& rope_for(int layer) const {
    return o_.config.sliding_layers[static_cast<size_t>(layer)] ? rope_sliding_ : rope_full_;
  }

  ml::Tensor build(const Inputs& in, kvcache::Causal& cache) const override {
    ml::Tensor x = token_embd.forward(in.tokens);  // [n_embd, n_tokens]
    // Gemma3TextScaledWordEmbedding: the scale in the weights' dtype, here f32.
    x = ml::scale(x, std::sqrt(static_cast<float>(o_.config.n_embd)));
    x.set_name("token_embd.out");
    for (size_t il = 0; il < blocks_.size(); ++il) {
      const int layer = static_cast<int>(il);
      x = blocks_[il]->forward(x, in.positions, rope_for(layer), cache, layer);
      x.set_name("blk." + std::to_string(il) + ".out");  // `corral debug tensors` shows it
    }
    if (in.outputs.valid()) x = ml::get_rows(x, in.outputs);  // [n_embd, n_outputs]
    x = output_norm.forward(x);
    x.set_name("output_norm.out");
    if (in.output == Output::kEmbeddings) return x;
    return output.forward(x);  // [n_vocab, n_outputs]
  }

  Options o_;
  nn::Embedding token_embd{*this, "token_embd", o_.config.n_embd, o_.config.n_vocab};
  nn::Module blk{*this, "blk"};
  std::vector<std::unique_ptr<Block>> blocks_;
  nn::RMSNorm output_norm{*this, "output_norm", o_.config.n_embd, o_.eps};
  // Gemma ties the output to the embedding table; a file with its own output.weight binds it.
  nn::Linear output{
      *this, "output", o_.config.n_embd, o_.config.n_vocab, nn::Bias::kOptional, "token_embd",
  };
  // No frequency factors; the modules' optional tensors stay unbound.
  nn::RoPE rope_full_{*this, "rope_freqs", o_.rope_full};
  nn::RoPE rope_sliding_{*this, "rope_freqs_swa", o_.rope_sliding};
};

}  // namespace

std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector) {
  if (projector != nullptr) {
    throw std::runtime_error(file.source() + ": gemma3 text models take no projector file (" +
                             projector->source() + ")");
  }
  Options o(file);
  check_config(file, o.config, o.rope_full);
  return std::make_unique<Gemma3>(std::move(o));
}

}  // namespace corral::model::gemma3
