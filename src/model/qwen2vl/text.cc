// Qwen2VLTextModel (transformers models/qwen2_vl/modeling_qwen2_vl.py): qwen2's decoder (q/k/v
// biases, SwiGLU, RMSNorm) whose rotation is multimodal RoPE: the pairs of each head split into
// sections (t, h, w) rotated by the token's position in time, row and column
// (apply_multimodal_rotary_pos_emb); the image tokens' embeddings are the vision tower's rows
// (Qwen2VLModel.forward's masked_scatter).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "model/qwen2vl/qwen2vl.h"

namespace corral::model::qwen2vl {

TextOptions::TextOptions(const ml::gguf::File& file) {
  const Keys k(file, "qwen2vl");
  Config& c = config;
  c.architecture = "qwen2vl";
  c.n_layer = static_cast<int>(k.positive("block_count"));
  c.n_embd = k.positive("embedding_length");
  c.n_vocab = vocab_size(file);
  c.n_head = k.positive("attention.head_count");
  c.n_head_kv = k.positive_or("attention.head_count_kv", c.n_head);
  c.head_dim_k = k.positive_or("attention.key_length", c.n_embd / c.n_head);
  c.head_dim_v = k.positive_or("attention.value_length", c.head_dim_k);
  c.n_ctx_train = k.positive_or("context_length", 32768);
  n_ff = k.positive("feed_forward_length");
  eps = k.number_or("attention.layer_norm_rms_epsilon", 1e-6f);

  rope.mode = ml::op::RopeMode::kMRope;
  rope.n_dims = static_cast<int32_t>(k.positive_or("rope.dimension_count", c.head_dim_k));
  rope.freq_base = k.number_or("rope.freq_base", 1000000.0f);
  rope.n_ctx_orig = static_cast<int32_t>(c.n_ctx_train);
  const std::string key = k.full("rope.dimension_sections");
  const ml::gguf::Value* v = file.metadata().find(key);
  if (v == nullptr || !v->is<ml::gguf::Array>() || v->as_array().items.size() > 4) {
    throw std::runtime_error(file.source() + ": " + key + " (up to 4 integers) is missing");
  }
  int64_t total = 0;
  for (size_t i = 0; i < v->as_array().items.size(); ++i) {
    const auto x = v->as_array().items[i].as_integer();
    if (!x || *x < 0 || *x > rope.n_dims) {
      throw std::runtime_error(file.source() + ": " + key + " holds a value out of range");
    }
    rope.sections[i] = static_cast<int32_t>(*x);
    total += *x;
  }
  // Every rotated pair belongs to a section (transformers splits the head by them).
  if (total * 2 != rope.n_dims) {
    throw std::runtime_error(file.source() + ": " + key + " sums to " + std::to_string(total) +
                             ", expected half the rotated dimensions (" +
                             std::to_string(rope.n_dims / 2) + ")");
  }
}

nn::AttentionOptions TextOptions::attention() const {
  return {.n_embd = config.n_embd,
          .n_head = config.n_head,
          .n_head_kv = config.n_head_kv,
          .head_dim_k = config.head_dim_k,
          .head_dim_v = config.head_dim_v,
          .bias = nn::Bias::kRequired};
}

class TextBlock : public nn::Module {
 public:
  TextBlock(nn::Module& parent, int index, const TextOptions& o)
      : Module(parent, std::to_string(index)), o(o) {}

  const TextOptions& o;
  nn::RMSNorm attn_norm{*this, "attn_norm", o.config.n_embd, o.eps};
  nn::Attention attn{*this, o.attention()};
  nn::RMSNorm ffn_norm{*this, "ffn_norm", o.config.n_embd, o.eps};
  nn::Linear ffn_gate{*this, "ffn_gate", o.config.n_embd, o.n_ff};
  nn::Linear ffn_up{*this, "ffn_up", o.config.n_embd, o.n_ff};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.config.n_embd};

  // x [n_embd, n_tokens] -> [n_embd, n_tokens]
  ml::Tensor forward(ml::Tensor x, ml::Tensor rope_positions, const nn::RoPE& rope,
                     kvcache::Causal& cache, int layer) const {
    x = ml::add(x, attn.forward(attn_norm.forward(x), rope_positions, rope, cache, layer));
    ml::Tensor h = ffn_norm.forward(x);
    h = ffn_down.forward(ml::swiglu(ffn_gate.forward(h), ffn_up.forward(h)));
    return ml::add(x, h);
  }
};

Text::Text(nn::Module& parent, const TextOptions& o)
    : Module(parent, ""),
      o_(o),
      token_embd(*this, "token_embd", o.config.n_embd, o.config.n_vocab),
      output_norm(*this, "output_norm", o.config.n_embd, o.eps),
      output(*this, "output", o.config.n_embd, o.config.n_vocab, nn::Bias::kOptional, "token_embd"),
      rope(*this, "rope_freqs", o.rope) {
  for (int il = 0; il < o.config.n_layer; ++il) {
    blocks.push_back(std::make_unique<TextBlock>(blk, il, o));
  }
  shift_rope_ = o.rope;
  shift_rope_.mode = ml::op::RopeMode::kNeox;
  shift_rope_.sections = {};
}

Text::~Text() = default;

ml::Tensor Text::embed(const Inputs& in) const {
  ml::Tensor x = token_embd.forward(in.tokens);  // [n_embd, n_tokens]
  if (in.batch == nullptr || in.batch->images.empty()) return x;
  ml::Graph& g = *x.graph();
  const int64_t n_embd = o_.config.n_embd;
  const int64_t n_tokens = x.ne(1);
  // Columns [from, to) of x as a view.
  auto columns = [&](int64_t from, int64_t to) {
    const ml::Shape ne{n_embd, to - from, 1, 1};
    return ml::view(x, ne, ml::contiguous_strides(ml::DType::F32, ne),
                    static_cast<size_t>(from) * x.node().nb[1]);
  };
  // The text columns between images, and each image's rows, joined in batch order.
  std::vector<const Batch::ImageRows*> rows;
  for (const Batch::ImageRows& r : in.batch->images) rows.push_back(&r);
  std::sort(rows.begin(), rows.end(), [](auto* a, auto* b) { return a->first < b->first; });
  ml::Tensor out;
  int64_t at = 0;
  auto append = [&](ml::Tensor t) { out = out.valid() ? ml::concat(out, t, 1) : t; };
  for (const Batch::ImageRows* r : rows) {
    const auto* image = dynamic_cast<const EncodedImage*>(r->states);
    if (image == nullptr || image->n_embd != n_embd) {
      throw std::invalid_argument("qwen2vl: batch image states are not a qwen2vl image of width " +
                                  std::to_string(n_embd));
    }
    if (r->first < at || r->row + r->n > image->n()) {
      throw std::invalid_argument("qwen2vl: batch image rows overlap or lie outside the image");
    }
    if (r->first > at) append(columns(at, r->first));
    // The graph only reads leaves; the rows stay owned by the image states.
    append(g.leaf(ml::DType::F32, {n_embd, r->n},
                  const_cast<float*>(image->embd.data() + static_cast<size_t>(r->row) * n_embd),
                  "image rows"));
    at = r->first + r->n;
  }
  if (at < n_tokens) append(columns(at, n_tokens));
  return out;  // [n_embd, n_tokens]
}

ml::Tensor Text::forward(ml::Tensor x, ml::Tensor rope_positions, const Inputs& in,
                         kvcache::Causal& cache) const {
  x.set_name("token_embd.out");  // with the images' rows in place
  for (size_t il = 0; il < blocks.size(); ++il) {
    x = blocks[il]->forward(x, rope_positions, rope, cache, static_cast<int>(il));
    x.set_name("blk." + std::to_string(il) + ".out");  // `corral debug tensors` shows it
  }
  if (in.outputs.valid()) x = ml::get_rows(x, in.outputs);  // [n_embd, n_outputs]
  x = output_norm.forward(x);
  x.set_name("output_norm.out");
  if (in.output == Output::kEmbeddings) return x;
  return output.forward(x);  // [n_vocab, n_outputs]
}

ml::Tensor Text::shift(ml::Tensor keys, ml::Tensor delta) const {
  // Each pair's angle is its section's position times its frequency: moving every section by
  // the same delta turns each pair by delta times its frequency, as NeoX RoPE does.
  return ml::rope(keys, delta, {}, shift_rope_);
}

}  // namespace corral::model::qwen2vl
