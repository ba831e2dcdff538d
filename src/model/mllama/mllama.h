// mllama (Llama 3.2 Vision), transformers' models/mllama/modeling_mllama.py: the parts shared by
// mllama.cc (options, the model, the Vision interface), text.cc (MllamaTextModel with its
// cross-attention layers) and vision.cc (MllamaVisionModel).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/model.h"
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/rope.h"

namespace corral::model::mllama {

struct TextOptions {
  Config config;
  // Rows of output.weight: the text vocabulary. config.n_vocab also counts the tokenizer's tokens
  // past it (<|image|>), whose logits are -inf: they are never generated.
  int64_t n_output = 0;
  int64_t n_ff = 0;
  float eps = 1e-5f;
  ml::op::Rope rope;
  std::vector<float> freq_factors;  // from rope.scaling.* when the file has no rope_freqs
  std::vector<int> cross_layers;

  explicit TextOptions(const ml::gguf::File& file);
  bool is_cross(int layer) const;
  nn::AttentionOptions attention() const;
};

struct VisionOptions {
  int64_t n_embd = 0, n_head = 0, n_ff = 0;
  int n_layer = 0, n_global = 0;
  int64_t image_size = 0, patch_size = 0, n_tiles = 0, n_channels = 0;
  int64_t n_ratio_ids = 0;  // rows of the aspect-ratio embeddings (ids 0 .. n - 1)
  float eps = 1e-5f;
  // Local layers whose inputs join the output (n_layer: the last one's output). Meta's meaning,
  // which Ollama and transformers up to 4.x share; transformers 5.17 takes layer i's output.
  std::vector<int> intermediate;

  explicit VisionOptions(const ml::gguf::File& file);
  int64_t n_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  int64_t n_positions() const { return n_patches() + 1; }  // with the class embedding
  // transformers pads each tile's sequence to a multiple of 8.
  int64_t n_padded() const { return (n_positions() + 7) / 8 * 8; }
  int64_t n_out() const { return n_embd * (1 + static_cast<int64_t>(intermediate.size())); }
};

// One image as the text model's cross-attention layers see it: per cross-attention layer, keys
// (after k_norm) [head_dim, n_kv, n_head_kv] and values [head_dim, n_kv, n_head_kv], host f32,
// over the image's tiles in use (n_kv = n_tiles_used * n_positions).
struct CrossStates final : ImageStates {
  int64_t n_kv = 0;
  std::vector<std::vector<float>> k, v;
  size_t bytes() const override;
};

// Host data a vision graph reads, alive until it is computed.
struct VisionInputs {
  std::vector<float> pixels;  // [image_size, image_size, n_channels, n_tiles]
  int32_t aspect_ratio_id = 0;
  std::vector<int32_t> zeros;  // n_tiles zero ids (the class embedding's row)
  std::vector<float> padding;  // zeros [n_embd, n_padded - n_positions, n_tiles]
  std::vector<uint16_t> mask;  // f16 [n, n], n = n_tiles * n_padded (83 MB at 4 tiles of 1608)
};

// MllamaVisionEncoderLayer: pre-norm attention and GELU MLP; the global layers gate both.
struct VisionLayer : nn::Module {
  VisionLayer(nn::Module& parent, int index, const VisionOptions& o, bool gated);

  const VisionOptions& o;
  nn::LayerNorm attn_norm{*this, "attn_norm", o.n_embd, o.eps};
  nn::Linear attn_q{*this, "attn_q", o.n_embd, o.n_embd};
  nn::Linear attn_k{*this, "attn_k", o.n_embd, o.n_embd};
  nn::Linear attn_v{*this, "attn_v", o.n_embd, o.n_embd};
  nn::Linear attn_output{*this, "attn_output", o.n_embd, o.n_embd};
  nn::LayerNorm ffn_norm{*this, "ffn_norm", o.n_embd, o.eps};
  nn::Linear ffn_up{*this, "ffn_up", o.n_embd, o.n_ff};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.n_embd};
  // tanh(gate), as stored (global layers only).
  nn::Weight attn_gate, ffn_gate;

  // x [n_embd, n] with mask [n, n] -> [n_embd, n]
  ml::Tensor forward(ml::Tensor x, ml::Tensor mask) const;
};

// MllamaPrecomputedAspectRatioEmbedding: one embedding per tile, by aspect ratio id.
struct TileEmbedding : nn::Module {
  TileEmbedding(nn::Module& parent, std::string name, const VisionOptions& o);
  nn::Weight weight;  // [n_embd * n_tiles, n_ratio_ids]
  nn::Weight gate;    // tanh(gate) [1]
  // x [n_embd, n, n_tiles] + the embedding of ratio id I32 [1]
  ml::Tensor forward(ml::Tensor x, ml::Tensor ratio) const;
};

class VisionModel : public nn::Module {
 public:
  VisionModel(nn::Module& parent, const VisionOptions& o);

  // The graph of an image: -> [n_out, n_positions, n_tiles] (padding removed).
  ml::Tensor forward(ml::Graph& g, VisionInputs& in) const;
  // Fills the host inputs of an image (pixels [1, 1, n_tiles, C, H, W] in PyTorch order).
  VisionInputs inputs(const ImageInput& image) const;

 private:
  const VisionOptions& o;

 public:
  nn::Conv2D patch_embd;
  nn::Weight class_embd;  // [n_embd]
  nn::Module position_embd_{*this, "position_embd"};
  nn::Weight position_embd_weight;  // [n_embd, n_positions]
  nn::Weight position_embd_gate;    // 1 - tanh(gate) [1]
  nn::Module tile_position_embd_{*this, "tile_position_embd"};
  nn::Weight tile_position_embd_weight;  // [n_embd * n_positions * n_tiles, n_ratio_ids]
  nn::Weight tile_position_embd_gate;    // tanh(gate) [1]
  TileEmbedding pre_tile_position_embd, post_tile_position_embd;
  nn::LayerNorm pre_ln, post_ln;
  nn::Module blk{*this, "blk"};
  nn::Module global{*this, "global"};
  nn::Module global_blk{global, "blk"};
  std::vector<std::unique_ptr<VisionLayer>> layers, global_layers;
};

// MllamaSelfAttentionDecoderLayer: llama's block.
struct SelfBlock : nn::Module {
  SelfBlock(nn::Module& parent, int index, const TextOptions& o)
      : Module(parent, std::to_string(index)), o(o) {}

  const TextOptions& o;
  nn::RMSNorm attn_norm{*this, "attn_norm", o.config.n_embd, o.eps};
  nn::Attention attn{*this, o.attention()};
  nn::RMSNorm ffn_norm{*this, "ffn_norm", o.config.n_embd, o.eps};
  nn::Linear ffn_gate{*this, "ffn_gate", o.config.n_embd, o.n_ff};
  nn::Linear ffn_up{*this, "ffn_up", o.config.n_embd, o.n_ff};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.config.n_embd};

  ml::Tensor forward(ml::Tensor x, ml::Tensor positions, const nn::RoPE& rope,
                     kvcache::Causal& cache, int layer) const;
};

// MllamaCrossAttentionDecoderLayer: attention from the text to one image's states, and the MLP,
// each added through a tanh gate.
struct CrossBlock : nn::Module {
  CrossBlock(nn::Module& parent, int index, const TextOptions& o);

  const TextOptions& o;
  int64_t head_dim() const { return o.config.head_dim_k; }
  nn::RMSNorm attn_norm{*this, "attn_norm", o.config.n_embd, o.eps};
  nn::Linear cross_attn_q_proj{*this, "cross_attn_q_proj", o.config.n_embd,
                               o.config.n_head* head_dim()};
  nn::Linear cross_attn_k_proj{*this, "cross_attn_k_proj", o.config.n_embd,
                               o.config.n_head_kv* head_dim()};
  nn::Linear cross_attn_v_proj{*this, "cross_attn_v_proj", o.config.n_embd,
                               o.config.n_head_kv* head_dim()};
  nn::Linear cross_attn_o_proj{*this, "cross_attn_o_proj", o.config.n_head* head_dim(),
                               o.config.n_embd};
  nn::RMSNorm cross_attn_q_norm{*this, "cross_attn_q_norm", head_dim(), o.eps};
  nn::RMSNorm cross_attn_k_norm{*this, "cross_attn_k_norm", head_dim(), o.eps};
  nn::Weight cross_attn_attn_gate;  // before tanh [1]
  nn::Weight cross_attn_mlp_gate;   // before tanh [1]
  nn::RMSNorm ffn_norm{*this, "ffn_norm", o.config.n_embd, o.eps};
  nn::Linear ffn_gate{*this, "ffn_gate", o.config.n_embd, o.n_ff};
  nn::Linear ffn_up{*this, "ffn_up", o.config.n_embd, o.n_ff};
  nn::Linear ffn_down{*this, "ffn_down", o.n_ff, o.config.n_embd};

  // Projected image states [n_embd, n_kv] -> keys (after k_norm) and values, each
  // [head_dim, n_kv, n_head_kv].
  std::pair<ml::Tensor, ml::Tensor> keys_values(ml::Tensor states) const;
  // x [n_embd, n] attending to k, v [head_dim, n_kv, n_head_kv] -> [n_embd, n]. `mlp`: false for
  // tokens before their sequence's image (transformers' full_text_row_masked_out_mask zeroes
  // their MLP rows, not their attention).
  ml::Tensor forward(ml::Tensor x, ml::Tensor k, ml::Tensor v, bool mlp) const;
};

// MllamaTextModel with the output projection (MllamaForCausalLM). Its module has no name: its
// tensors sit at the file's root as in llama.
class TextModel : public nn::Module {
 public:
  TextModel(nn::Module& parent, const TextOptions& o);

  ml::Tensor forward(const Inputs& in, kvcache::Causal& cache) const;
  ml::Tensor shift(ml::Tensor keys, ml::Tensor delta) const {
    return rope_freqs.forward(keys, delta);
  }
  const std::vector<const CrossBlock*>& cross_blocks() const { return cross_; }

 private:
  const TextOptions& o;
  ml::Tensor cross_layer(const CrossBlock& b, ml::Tensor x, const Batch& batch) const;

 public:
  nn::Embedding token_embd;
  nn::Module blk{*this, "blk"};
  std::vector<std::unique_ptr<nn::Module>> blocks;
  nn::RMSNorm output_norm;
  nn::Linear output;
  nn::RoPE rope_freqs;

 private:
  std::vector<const CrossBlock*> cross_;
};

}  // namespace corral::model::mllama
