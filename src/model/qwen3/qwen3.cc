// Qwen3 (dense). Mirrors transformers' models/qwen3/modeling_qwen3.py: the qwen2 layout without
// q/k/v biases, with an RMSNorm over each head of Q and K (q_norm, k_norm: one weight of
// head_dim shared by all heads) before the NeoX rotation. head_dim is its own hyperparameter
// (attention.key_length), not n_embd / n_head. Tied or untied output embeddings.
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

namespace corral::model::qwen3 {
namespace {

struct Options {
  Config config;
  int64_t n_ff;
  float eps;
  ml::op::Rope rope;

  explicit Options(const ml::gguf::File& file) {
    const Keys k(file, "qwen3");
    Config& c = config;
    c.architecture = "qwen3";
    c.n_layer = static_cast<int>(k.positive("block_count"));
    c.n_embd = k.positive("embedding_length");
    c.n_vocab = vocab_size(file);
    c.n_head = k.positive("attention.head_count");
    c.n_head_kv = k.positive_or("attention.head_count_kv", c.n_head);
    c.head_dim_k = k.positive_or("attention.key_length", c.n_embd / c.n_head);
    c.head_dim_v = k.positive_or("attention.value_length", c.head_dim_k);
    c.n_ctx_train = k.positive_or("context_length", 40960);
    n_ff = k.positive("feed_forward_length");
    eps = k.number_or("attention.layer_norm_rms_epsilon", 1e-6f);

    rope.mode = ml::op::RopeMode::kNeox;
    rope.n_dims = static_cast<int32_t>(k.positive_or("rope.dimension_count", c.head_dim_k));
    rope.freq_base = k.number_or("rope.freq_base", 1000000.0f);
    rope.n_ctx_orig =
        static_cast<int32_t>(k.positive_or("rope.scaling.original_context_length", c.n_ctx_train));
    if (k.string_or("rope.scaling.type", "none") == "linear") {
      rope.freq_scale = 1.0f / k.number("rope.scaling.factor");
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
  nn::RMSNorm attn_q_norm{*this, "attn_q_norm", o.config.head_dim_k, o.eps};
  nn::RMSNorm attn_k_norm{*this, "attn_k_norm", o.config.head_dim_k, o.eps};
  nn::RMSNorm ffn_norm{*this, "ffn_norm", o.config.n_embd, o.eps};
  nn::Linear ffn_gate{*this, "ffn_gate", o.config.n_embd, o.n_ff};
  nn::Linear ffn_up{*this, "ffn_up", o.config.n_embd, o.n_ff};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.config.n_embd};

  // x [n_embd, n_tokens] -> [n_embd, n_tokens]
  ml::Tensor forward(ml::Tensor x, ml::Tensor positions, const nn::RoPE& rope,
                     kvcache::Causal& cache, int layer) const {
    const Config& c = o.config;
    const ml::Tensor h = attn_norm.forward(x);
    const int64_t n_tokens = h.ne(1);
    ml::Tensor q = ml::reshape(attn.attn_q.forward(h), {c.head_dim_k, c.n_head, n_tokens});
    ml::Tensor k = ml::reshape(attn.attn_k.forward(h), {c.head_dim_k, c.n_head_kv, n_tokens});
    ml::Tensor v = ml::reshape(attn.attn_v.forward(h), {c.head_dim_v, c.n_head_kv, n_tokens});
    // The norms run over ne[0], one head's features, before the rotation.
    q = rope.forward(attn_q_norm.forward(q), positions);
    k = rope.forward(attn_k_norm.forward(k), positions);
    x = ml::add(x, attn.attn_output.forward(attn.attend(q, k, v, cache, layer)));

    ml::Tensor f = ffn_norm.forward(x);
    f = ffn_down.forward(ml::swiglu(ffn_gate.forward(f), ffn_up.forward(f)));  // [n_embd, n]
    return ml::add(x, f);
  }
};

class Qwen3 final : public Model {
 public:
  explicit Qwen3(Options o) : Model(o.config), o_(std::move(o)) {
    for (int il = 0; il < o_.config.n_layer; ++il) {
      blocks_.push_back(std::make_unique<Block>(blk, il, o_));
    }
  }

  ml::Tensor shift(ml::Tensor keys, ml::Tensor delta, int) const override {
    return rope_.forward(keys, delta);
  }

 private:
  ml::Tensor build(const Inputs& in, kvcache::Causal& cache) const override {
    ml::Tensor x = token_embd.forward(in.tokens);  // [n_embd, n_tokens]
    x.set_name("token_embd.out");
    for (size_t il = 0; il < blocks_.size(); ++il) {
      x = blocks_[il]->forward(x, in.positions, rope_, cache, static_cast<int>(il));
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
  // Small Qwen3 models tie the output to the embedding table (no output.weight); larger ones
  // store their own.
  nn::Linear output{
      *this, "output", o_.config.n_embd, o_.config.n_vocab, nn::Bias::kOptional, "token_embd",
  };
  // No frequency factors; the module's optional rope_freqs tensor stays unbound.
  nn::RoPE rope_{*this, "rope_freqs", o_.rope};
};

}  // namespace

std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector) {
  if (projector != nullptr) {
    throw std::runtime_error(file.source() + ": qwen3 models take no projector file (" +
                             projector->source() + ")");
  }
  Options o(file);
  check_config(file, o.config, o.rope);
  return std::make_unique<Qwen3>(std::move(o));
}

}  // namespace corral::model::qwen3
