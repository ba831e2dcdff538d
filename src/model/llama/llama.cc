// Llama 1/2/3 and the models that share its layout (TinyLlama, Mistral without sliding window,
// llama2.c's stories). Mirrors transformers' models/llama/modeling_llama.py: pre-norm blocks of
// grouped-query attention with RoPE and a SwiGLU feed-forward, RMSNorm throughout. GGUF stores
// Q and K permuted (llama.cpp's converter), so the rotation is the interleaved-pair one.
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

namespace corral::model::llama {
namespace {

struct Options {
  Config config;
  int64_t n_ff;
  float eps;
  ml::op::Rope rope;
  std::vector<float> freq_factors;  // from rope.scaling.* when the file has no rope_freqs

  explicit Options(const ml::gguf::File& file) {
    const Keys k(file, "llama");
    Config& c = config;
    c.architecture = "llama";
    c.n_layer = static_cast<int>(k.positive("block_count"));
    c.n_embd = k.positive("embedding_length");
    c.n_vocab = vocab_size(file);
    c.n_head = k.positive("attention.head_count");
    c.n_head_kv = k.positive_or("attention.head_count_kv", c.n_head);
    c.head_dim_k = k.positive_or("attention.key_length", c.n_embd / c.n_head);
    c.head_dim_v = k.positive_or("attention.value_length", c.head_dim_k);
    c.n_ctx_train = k.positive_or("context_length", 2048);
    n_ff = k.positive("feed_forward_length");
    eps = k.number_or("attention.layer_norm_rms_epsilon", 1e-5f);

    rope.mode = ml::op::RopeMode::kNormal;
    rope.n_dims = static_cast<int32_t>(k.positive_or("rope.dimension_count", c.head_dim_k));
    rope.freq_base = k.number_or("rope.freq_base", 10000.0f);
    rope.n_ctx_orig =
        static_cast<int32_t>(k.positive_or("rope.scaling.original_context_length", c.n_ctx_train));
    const std::string type =
        k.string_or("rope.scaling.type", k.has("rope.scaling.factor") ? "linear" : "none");
    const float factor = k.number_or("rope.scaling.factor", 1.0f);
    if (type == "llama3" || k.has("rope.scaling.low_freq_factor")) {
      freq_factors = nn::llama3_freq_factors(
          rope.n_dims, rope.freq_base, factor, k.number_or("rope.scaling.low_freq_factor", 1.0f),
          k.number_or("rope.scaling.high_freq_factor", 4.0f), rope.n_ctx_orig);
    } else if (type == "linear" && factor > 0.0f) {
      rope.freq_scale = 1.0f / factor;
    }
  }

  nn::AttentionOptions attention() const {
    return {.n_embd = config.n_embd,
            .n_head = config.n_head,
            .n_head_kv = config.n_head_kv,
            .head_dim_k = config.head_dim_k,
            .head_dim_v = config.head_dim_v};
  }
};

struct Block : nn::Module {
  Block(nn::Module& parent, int index, const Options& o)
      : Module(parent, std::to_string(index)), o(o) {}

  const Options& o;
  nn::RMSNorm attn_norm{*this, "attn_norm", o.config.n_embd, o.eps};
  nn::Attention attn{*this, o.attention()};
  nn::RMSNorm ffn_norm{*this, "ffn_norm", o.config.n_embd, o.eps};
  nn::Linear ffn_gate{*this, "ffn_gate", o.config.n_embd, o.n_ff};
  nn::Linear ffn_up{*this, "ffn_up", o.config.n_embd, o.n_ff};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.config.n_embd};

  // x [n_embd, n_tokens] -> [n_embd, n_tokens]
  ml::Tensor forward(ml::Tensor x, ml::Tensor positions, const nn::RoPE& rope,
                     kvcache::Causal& cache, int layer) const {
    x = ml::add(x, attn.forward(attn_norm.forward(x), positions, rope, cache, layer));
    ml::Tensor h = ffn_norm.forward(x);
    h = ffn_down.forward(ml::swiglu(ffn_gate.forward(h), ffn_up.forward(h)));  // [n_embd, n]
    return ml::add(x, h);
  }
};

class Llama final : public Model {
 public:
  explicit Llama(Options o) : Model(o.config), o_(std::move(o)) {
    for (int il = 0; il < o_.config.n_layer; ++il) {
      blocks_.push_back(std::make_unique<Block>(blk, il, o_));
    }
    rope_freqs.set_computed_factors(o_.freq_factors);
  }

  ml::Tensor shift(ml::Tensor keys, ml::Tensor delta, int) const override {
    return rope_freqs.forward(keys, delta);
  }

 private:
  ml::Tensor build(const Inputs& in, kvcache::Causal& cache) const override {
    ml::Tensor x = token_embd.forward(in.tokens);  // [n_embd, n_tokens]
    x.set_name("token_embd.out");
    for (size_t il = 0; il < blocks_.size(); ++il) {
      x = blocks_[il]->forward(x, in.positions, rope_freqs, cache, static_cast<int>(il));
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
  // Tied embeddings: without output.weight the embedding table projects back to the vocabulary.
  nn::Linear output{
      *this, "output", o_.config.n_embd, o_.config.n_vocab, nn::Bias::kOptional, "token_embd",
  };
  nn::RoPE rope_freqs{*this, "rope_freqs", o_.rope};
};

}  // namespace

std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector) {
  if (projector != nullptr) {
    throw std::runtime_error(file.source() + ": " + std::string("llama") +
                             " models take no projector file (" + projector->source() + ")");
  }
  Options o(file);
  check_config(file, o.config, o.rope);
  return std::make_unique<Llama>(std::move(o));
}

}  // namespace corral::model::llama
