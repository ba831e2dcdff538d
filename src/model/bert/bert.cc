// BERT encoders (embedding models such as all-MiniLM, bge, nomic's BERT ancestors). Mirrors
// transformers' models/bert/modeling_bert.py BertModel: word + token type (type 0) + absolute
// position embeddings, a LayerNorm, then post-LayerNorm blocks (attention with biases, residual,
// LayerNorm; GELU MLP, residual, LayerNorm). Attention is bidirectional: the KV cache is made
// non-causal (Config::causal false), so a token sees every token of its own sequence and none of
// the others in the batch. The hidden states come out unpooled; the runner pools them as
// `bert.pooling_type` says. GGUF names and keys as llama.cpp's convert_hf_to_gguf.py BertModel
// writes them (token_types, position_embd, token_embd_norm, attn_output_norm,
// layer_output_norm).
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

namespace corral::model::bert {
namespace {

struct Options {
  Config config;
  int64_t n_ff;
  float eps;

  explicit Options(const ml::gguf::File& file) {
    const Keys k(file, "bert");
    Config& c = config;
    c.architecture = "bert";
    c.causal = false;
    c.n_layer = static_cast<int>(k.positive("block_count"));
    c.n_embd = k.positive("embedding_length");
    c.n_vocab = vocab_size(file);
    c.n_head = k.positive("attention.head_count");
    c.n_head_kv = c.n_head;
    c.head_dim_k = c.head_dim_v = c.n_embd / c.n_head;
    // Positions index position_embd: the context is what the table holds.
    c.n_ctx_train = k.positive_or("context_length", 512);
    n_ff = k.positive("feed_forward_length");
    eps = k.number_or("attention.layer_norm_epsilon", 1e-12f);
    if (c.n_layer <= 0 || static_cast<size_t>(c.n_layer) > file.tensors().size()) {
      throw std::runtime_error(file.source() + ": bert: block_count " + std::to_string(c.n_layer) +
                               " does not fit the file's " + std::to_string(file.tensors().size()) +
                               " tensors");
    }
    if (c.n_embd % c.n_head != 0) {
      throw std::runtime_error(file.source() + ": bert: embedding_length " +
                               std::to_string(c.n_embd) + " is not a multiple of head_count " +
                               std::to_string(c.n_head));
    }
  }

  nn::AttentionOptions attention() const {
    return {.n_embd = config.n_embd,
            .n_head = config.n_head,
            .n_head_kv = config.n_head_kv,
            .head_dim_k = config.head_dim_k,
            .head_dim_v = config.head_dim_v,
            .bias = nn::Bias::kRequired};
  }
};

struct Block : nn::Module {
  Block(nn::Module& parent, int index, const Options& o)
      : Module(parent, std::to_string(index)), o(o) {}

  const Options& o;
  nn::Attention attn{*this, o.attention()};
  nn::LayerNorm attn_output_norm{*this, "attn_output_norm", o.config.n_embd, o.eps};
  nn::Linear ffn_up{*this, "ffn_up", o.config.n_embd, o.n_ff, nn::Bias::kRequired};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.config.n_embd, nn::Bias::kRequired};
  nn::LayerNorm layer_output_norm{*this, "layer_output_norm", o.config.n_embd, o.eps};

  // x [n_embd, n_tokens] -> [n_embd, n_tokens]
  ml::Tensor forward(ml::Tensor x, kvcache::Causal& cache, int layer) const {
    const Config& c = o.config;
    const int64_t n_tokens = x.ne(1);
    ml::Tensor q = ml::reshape(attn.attn_q.forward(x), {c.head_dim_k, c.n_head, n_tokens});
    ml::Tensor k = ml::reshape(attn.attn_k.forward(x), {c.head_dim_k, c.n_head_kv, n_tokens});
    ml::Tensor v = ml::reshape(attn.attn_v.forward(x), {c.head_dim_v, c.n_head_kv, n_tokens});
    // PyTorch: x = LayerNorm(dense(attention) + x)   (BertSelfOutput)
    x = attn_output_norm.forward(
        ml::add(attn.attn_output.forward(attn.attend(q, k, v, cache, layer)), x));
    // PyTorch: x = LayerNorm(output(gelu(intermediate(x))) + x)   (BertIntermediate, BertOutput)
    const ml::Tensor f =
        ffn_down.forward(ml::gelu(ffn_up.forward(x), ml::op::GeluForm::kErf));  // [n_embd, n]
    return layer_output_norm.forward(ml::add(f, x));
  }
};

class Bert final : public Model {
 public:
  explicit Bert(Options o) : Model(o.config), o_(std::move(o)) {
    for (int il = 0; il < o_.config.n_layer; ++il) {
      blocks_.push_back(std::make_unique<Block>(blk, il, o_));
    }
  }

  // Encoders never shift their context: a sequence is evaluated whole, once.
  ml::Tensor shift(ml::Tensor keys, ml::Tensor, int) const override { return keys; }

 private:
  // Returns the hidden states of the output rows whatever `in.output` asks: BERT has no
  // vocabulary projection (the runner refuses generation for non-causal models).
  ml::Tensor build(const Inputs& in, kvcache::Causal& cache) const override {
    ml::Graph& g = *in.tokens.graph();
    const int64_t n_embd = o_.config.n_embd;
    // Every token is of type 0 (one segment), as Ollama and llama.cpp embed.
    const ml::Tensor type0 = g.leaf(ml::DType::I32, {1}, const_cast<int32_t*>(&kTypeZero));
    ml::Tensor x = token_embd.forward(in.tokens);  // [n_embd, n_tokens]
    x = ml::add(x, ml::reshape(token_types.forward(type0), {n_embd}));
    x = ml::add(x, position_embd.forward(in.positions));
    x = token_embd_norm.forward(x);
    x.set_name("token_embd.out");
    for (size_t il = 0; il < blocks_.size(); ++il) {
      x = blocks_[il]->forward(x, cache, static_cast<int>(il));
      x.set_name("blk." + std::to_string(il) + ".out");  // `corral debug tensors` shows it
    }
    if (in.outputs.valid()) x = ml::get_rows(x, in.outputs);  // [n_embd, n_outputs]
    return x;
  }

  static constexpr int32_t kTypeZero = 0;

  Options o_;
  nn::Embedding token_embd{*this, "token_embd", o_.config.n_embd, o_.config.n_vocab};
  // [n_embd, token_type_count]; only row 0 is read.
  nn::Embedding token_types{*this, "token_types", o_.config.n_embd};
  nn::Embedding position_embd{*this, "position_embd", o_.config.n_embd, o_.config.n_ctx_train};
  nn::LayerNorm token_embd_norm{*this, "token_embd_norm", o_.config.n_embd, o_.eps};
  nn::Module blk{*this, "blk"};
  std::vector<std::unique_ptr<Block>> blocks_;
};

}  // namespace

std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector) {
  if (projector != nullptr) {
    throw std::runtime_error(file.source() + ": bert models take no projector file (" +
                             projector->source() + ")");
  }
  return std::make_unique<Bert>(Options(file));
}

}  // namespace corral::model::bert
