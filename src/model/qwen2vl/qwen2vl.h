// Qwen2-VL (transformers models/qwen2_vl/modeling_qwen2_vl.py): the parts shared by
// qwen2vl.cc (options, the model, registration), text.cc (Qwen2VLTextModel: qwen2's decoder
// rotated by M-RoPE sections, image rows in place of the image tokens' embeddings) and
// vision.cc (Qwen2VisionTransformerPretrainedModel and the model::Vision around it).
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "ml/gguf/reader.h"
#include "model/model.h"
#include "model/qwen2vl/image.h"
#include "nn/attention.h"
#include "nn/embedding.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/rope.h"

namespace corral::model::qwen2vl {

// ---- text (text.cc) ----

struct TextOptions {
  Config config;
  int64_t n_ff;
  float eps;
  ml::op::Rope rope;  // kMRope with the file's rope.dimension_sections

  explicit TextOptions(const ml::gguf::File& file);
  nn::AttentionOptions attention() const;
};

class TextBlock;

// The decoder, named as GGUF names it at the top level (token_embd, blk.N, output_norm, output).
class Text : public nn::Module {
 public:
  Text(nn::Module& parent, const TextOptions& o);
  ~Text() override;

  // The batch's tokens embedded, with the rows of the images it names in place of theirs.
  // -> f32 [n_embd, n_tokens]
  ml::Tensor embed(const Inputs& in) const;
  // x [n_embd, n_tokens] at M-RoPE positions I32 [4 * n_tokens] -> logits or hidden states.
  ml::Tensor forward(ml::Tensor x, ml::Tensor rope_positions, const Inputs& in,
                     kvcache::Causal& cache) const;
  // Cached keys rotated by a position delta in every section alike (a NeoX rotation).
  ml::Tensor shift(ml::Tensor keys, ml::Tensor delta) const;

 private:
  const TextOptions& o_;
  ml::op::Rope shift_rope_;

 public:
  nn::Embedding token_embd{*this, "token_embd", o_.config.n_embd, o_.config.n_vocab};
  nn::Module blk{*this, "blk"};
  std::vector<std::unique_ptr<TextBlock>> blocks;
  nn::RMSNorm output_norm{*this, "output_norm", o_.config.n_embd, o_.eps};
  // Tied embeddings: without output.weight the embedding table projects back to the vocabulary.
  nn::Linear output{
      *this, "output", o_.config.n_embd, o_.config.n_vocab, nn::Bias::kOptional, "token_embd",
  };
  // Its optional rope_freqs tensor stays unbound (Qwen2-VL has none).
  nn::RoPE rope{*this, "rope_freqs", o_.rope};
};

// ---- vision (vision.cc) ----

// The clip.vision.* keys of llama.cpp's mmproj files, read from whichever file holds them.
struct VisionOptions {
  int64_t n_embd = 0;
  int64_t n_head = 0;
  int64_t n_layer = 0;
  int64_t n_embd_text = 0;  // projection_dim
  float eps = 1e-6f;
  float rope_base = 10000.0f;  // transformers' VisionRotaryEmbedding theta
  ImageOptions image;
  int32_t vision_start = -1, vision_end = -1, image_pad = -1;  // token ids

  // Throws naming the file and key for anything missing or out of range.
  VisionOptions(const ml::gguf::File& vision_file, const ml::gguf::File& text_file,
                int64_t n_embd_text);
  int64_t head_dim() const { return n_embd / n_head; }
  int64_t patch_values() const {
    return 3 * image.temporal_patch_size * image.patch_size * image.patch_size;
  }
};

class VisionBlock;

// The vision tower and the merger, named as llama.cpp's mmproj names them (v.*, mm.*).
class VisionTower : public nn::Module {
 public:
  VisionTower(nn::Module& parent, const VisionOptions& o);
  ~VisionTower() override;

  // pixels f32 [3 * temporal * patch^2, n_patches] in the processor's (merge-window) order,
  // positions I32 [4 * n_patches] (row..., col..., row..., col...) -> f32
  // [n_embd_text, n_patches / merge^2]
  ml::Tensor forward(ml::Tensor pixels, ml::Tensor positions) const;

  const VisionOptions& options() const { return o_; }

 private:
  const VisionOptions& o_;
  ml::op::Rope rope_;

  int64_t merged() const { return o_.n_embd * o_.image.merge_size * o_.image.merge_size; }
  nn::WeightSpec kernel() const {
    return nn::WeightSpec({o_.image.patch_size, o_.image.patch_size, 3, o_.n_embd});
  }

  nn::Module v_{*this, "v"};
  // The Conv3d's two temporal kernel slices [patch, patch, 3, n_embd].
  nn::Module patch_embd_{v_, "patch_embd"};
  nn::Weight patch_embd_0_{patch_embd_, "weight", kernel()};
  nn::Weight patch_embd_1_{patch_embd_, "weight.1", kernel()};
  nn::Module blk_{v_, "blk"};
  std::vector<std::unique_ptr<VisionBlock>> blocks_;
  nn::LayerNorm post_ln_{v_, "post_ln", o_.n_embd, o_.eps};  // the merger's ln_q
  nn::Module mm_{*this, "mm"};
  nn::Linear mm_0_{mm_, "0", merged(), merged(), nn::Bias::kRequired};
  nn::Linear mm_2_{mm_, "2", merged(), o_.n_embd_text, nn::Bias::kRequired};
};

// What one image leaves for the text model: its merged rows.
struct EncodedImage final : model::ImageStates {
  std::vector<float> embd;  // f32 [n_embd_text, n]
  int64_t n_embd = 0;
  int64_t grid_t = 0, grid_h = 0, grid_w = 0;  // merged rows in time, height, width
  size_t bytes() const override { return embd.size() * sizeof(float); }
  int64_t n() const { return grid_t * grid_h * grid_w; }
};

std::unique_ptr<model::Vision> make_vision(const VisionTower& tower);

}  // namespace corral::model::qwen2vl
