// MllamaVisionModel (transformers models/mllama/modeling_mllama.py): a ViT over up to
// max_num_tiles tiles of one image. Per tile: patch convolution (no bias), the tile's aspect-ratio
// embedding, a class embedding in front, gated patch and tile positional embeddings, layernorm_pre
// and zero padding to a multiple of 8; then the local layers over all tiles' tokens at once
// (keeping the inputs of intermediate_layers_indices), layernorm_post, the post-tile embedding
// and the gated global layers; the result, without padding, joined on the feature axis with the
// intermediate states.
#include <cmath>
#include <stdexcept>
#include <string>

#include "ml/fp16.h"
#include "model/mllama/mllama.h"

namespace corral::model::mllama {

VisionLayer::VisionLayer(nn::Module& parent, int index, const VisionOptions& o, bool gated)
    : Module(parent, std::to_string(index)),
      o(o),
      attn_gate(*this, "attn_gate", nn::WeightSpec({1}).f32().optional_if(!gated)),
      ffn_gate(*this, "ffn_gate", nn::WeightSpec({1}).f32().optional_if(!gated)) {}

ml::Tensor VisionLayer::forward(ml::Tensor x, ml::Tensor mask) const {
  ml::Graph& g = *x.graph();
  const int64_t n = x.ne(1), head_dim = o.n_embd / o.n_head;
  // PyTorch: F.scaled_dot_product_attention(q, k, v, attn_mask) over heads of head_dim.
  const ml::Tensor h = attn_norm.forward(x);
  const auto heads = [&](const nn::Linear& proj) {  // -> [head_dim, n, n_head]
    return ml::cont(ml::permute(ml::reshape(proj.forward(h), {head_dim, o.n_head, n}), 0, 2, 1, 3));
  };
  ml::Tensor a = ml::flash_attn(heads(attn_q), heads(attn_k), heads(attn_v), mask,
                                1.0f / std::sqrt(static_cast<float>(head_dim)), false);
  a = attn_output.forward(ml::reshape(a, {o.n_embd, n}));
  if (attn_gate.present()) a = ml::mul(a, attn_gate.leaf(g));
  x = ml::add(x, a);

  ml::Tensor f =
      ffn_down.forward(ml::gelu(ffn_up.forward(ffn_norm.forward(x)), ml::op::GeluForm::kErf));
  if (ffn_gate.present()) f = ml::mul(f, ffn_gate.leaf(g));
  return ml::add(x, f);
}

TileEmbedding::TileEmbedding(nn::Module& parent, std::string name, const VisionOptions& o)
    : Module(parent, std::move(name)),
      weight(*this, "weight", nn::WeightSpec({o.n_embd * o.n_tiles, o.n_ratio_ids})),
      gate(*this, "gate", nn::WeightSpec({1}).f32()) {}

ml::Tensor TileEmbedding::forward(ml::Tensor x, ml::Tensor ratio) const {
  ml::Graph& g = *x.graph();
  const int64_t n_embd = x.ne(0), n_tiles = x.ne(2);
  // embedding[aspect_ratio_ids].reshape(-1, max_num_tiles, 1, hidden) * gate.tanh()
  ml::Tensor e = ml::reshape(ml::get_rows(weight.leaf(g), ratio), {n_embd, 1, n_tiles});
  return ml::add(x, ml::mul(e, gate.leaf(g)));
}

VisionModel::VisionModel(nn::Module& parent, const VisionOptions& o)
    : Module(parent, "v"),
      o(o),
      patch_embd(
          *this, "patch_embd",
          {.s0 = static_cast<int32_t>(o.patch_size), .s1 = static_cast<int32_t>(o.patch_size)},
          o.patch_size, o.patch_size, o.n_channels, o.n_embd),
      class_embd(*this, "class_embd", nn::WeightSpec({o.n_embd}).f32()),
      position_embd_weight(position_embd_, "weight", nn::WeightSpec({o.n_embd, o.n_positions()})),
      position_embd_gate(position_embd_, "gate", nn::WeightSpec({1}).f32()),
      tile_position_embd_weight(
          tile_position_embd_, "weight",
          nn::WeightSpec({o.n_embd * o.n_positions() * o.n_tiles, o.n_ratio_ids})),
      tile_position_embd_gate(tile_position_embd_, "gate", nn::WeightSpec({1}).f32()),
      pre_tile_position_embd(*this, "pre_tile_position_embd", o),
      post_tile_position_embd(*this, "post_tile_position_embd", o),
      pre_ln(*this, "pre_ln", o.n_embd, 1e-5f),
      post_ln(*this, "post_ln", o.n_embd, 1e-5f) {
  for (int il = 0; il < o.n_layer; ++il) {
    layers.push_back(std::make_unique<VisionLayer>(blk, il, o, false));
  }
  for (int il = 0; il < o.n_global; ++il) {
    global_layers.push_back(std::make_unique<VisionLayer>(global_blk, il, o, true));
  }
}

VisionInputs VisionModel::inputs(const ImageInput& image) const {
  const int64_t s = o.image_size, n_tiles = o.n_tiles, c = o.n_channels;
  const std::vector<int64_t> want = {1, 1, n_tiles, c, s, s};
  if (image.shape != want ||
      image.pixel_values.size() != static_cast<size_t>(n_tiles * c * s * s)) {
    std::string got;
    for (int64_t d : image.shape) got += (got.empty() ? "" : ", ") + std::to_string(d);
    throw std::invalid_argument("mllama: pixel_values of shape [" + got + "], expected [1, 1, " +
                                std::to_string(n_tiles) + ", " + std::to_string(c) + ", " +
                                std::to_string(s) + ", " + std::to_string(s) + "]");
  }
  if (image.aspect_ratio_id < 1 || image.aspect_ratio_id >= o.n_ratio_ids) {
    throw std::invalid_argument("mllama: aspect_ratio_id " + std::to_string(image.aspect_ratio_id) +
                                " outside 1.." + std::to_string(o.n_ratio_ids - 1));
  }
  if (image.aspect_ratio_mask.size() != static_cast<size_t>(n_tiles) ||
      image.aspect_ratio_mask[0] == 0) {
    throw std::invalid_argument("mllama: aspect_ratio_mask must hold " + std::to_string(n_tiles) +
                                " entries, the first set");
  }
  VisionInputs in;
  in.pixels = image.pixel_values;  // PyTorch [T, C, H, W] is ggml [W, H, C, T]
  in.aspect_ratio_id = image.aspect_ratio_id;
  in.zeros.assign(static_cast<size_t>(n_tiles), 0);
  const int64_t n_pos = o.n_positions(), n_pad = o.n_padded(), n = n_tiles * n_pad;
  in.padding.assign(static_cast<size_t>(o.n_embd * (n_pad - n_pos) * n_tiles), 0.0f);
  // transformers' _prepare_aspect_ratio_attention_mask: a token is padding when its tile is not
  // in use or it is one of the tile's padding patches; only padding attending to padding is
  // masked (padding rows still see the image, and every token sees the padding).
  std::vector<char> padding(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    padding[i] = image.aspect_ratio_mask[i / n_pad] == 0 || i % n_pad >= n_pos;
  }
  const uint16_t masked = ml::fp32_to_fp16(-INFINITY);
  in.mask.assign(static_cast<size_t>(n * n), ml::fp32_to_fp16(0.0f));
  for (int64_t i = 0; i < n; ++i) {
    if (!padding[i]) continue;
    for (int64_t j = 0; j < n; ++j) {
      if (padding[j]) in.mask[i * n + j] = masked;
    }
  }
  return in;
}

ml::Tensor VisionModel::forward(ml::Graph& g, VisionInputs& in) const {
  const int64_t s = o.image_size, n_embd = o.n_embd, n_tiles = o.n_tiles;
  const int64_t n_pos = o.n_positions(), n_pad = o.n_padded(), n = n_tiles * n_pad;
  ml::Tensor pixels =
      g.leaf(ml::DType::F32, {s, s, o.n_channels, n_tiles}, in.pixels.data(), "pixel_values");
  ml::Tensor ratio = g.leaf(ml::DType::I32, {1}, &in.aspect_ratio_id, "aspect_ratio_id");

  // patch_embeds.flatten(2).transpose(1, 2): [OW, OH, n_embd, T] -> [n_embd, n_patches, T]
  ml::Tensor x = patch_embd.forward(pixels);
  x = ml::cont(ml::permute(ml::reshape(x, {o.n_patches(), n_embd, n_tiles}), 1, 0, 2, 3));
  x = pre_tile_position_embd.forward(x, ratio);

  // torch.cat([class_embedding.expand(T, 1, -1), x], dim=1) -> [n_embd, n_positions, T]
  ml::Tensor zeros = g.leaf(ml::DType::I32, {n_tiles}, in.zeros.data(), "class_rows");
  ml::Tensor cls = ml::get_rows(ml::reshape(class_embd.leaf(g), {n_embd, 1}), zeros);
  x = ml::concat(ml::reshape(cls, {n_embd, 1, n_tiles}), x, 1);

  // (1 - gate.tanh()) * embedding + gate.tanh() * tile_embedding[aspect_ratio_ids]
  x = ml::add(x, ml::mul(position_embd_weight.leaf(g), position_embd_gate.leaf(g)));
  ml::Tensor tile = ml::get_rows(tile_position_embd_weight.leaf(g), ratio);
  tile = ml::reshape(tile, {n_embd, n_pos, n_tiles});
  x = ml::add(x, ml::mul(tile, tile_position_embd_gate.leaf(g)));
  x = pre_ln.forward(x);

  if (n_pad > n_pos) {
    ml::Tensor pad =
        g.leaf(ml::DType::F32, {n_embd, n_pad - n_pos, n_tiles}, in.padding.data(), "padding");
    x = ml::concat(x, pad, 1);  // [n_embd, n_pad, T]
  }
  x = ml::reshape(x, {n_embd, n});
  ml::Tensor mask = g.leaf(ml::DType::F16, {n, n}, in.mask.data(), "vision_mask");

  // The inputs of the listed local layers (index n_layer: the last one's output), in layer
  // order, as Meta's VisionEncoder collects them with return_intermediate.
  std::vector<ml::Tensor> intermediate;
  const auto keep = [&](size_t il) {
    for (int k : o.intermediate) {
      if (k == static_cast<int>(il)) intermediate.push_back(x);
    }
  };
  for (size_t il = 0; il < layers.size(); ++il) {
    keep(il);
    x = layers[il]->forward(x, mask);
  }
  keep(layers.size());
  x = post_ln.forward(x);
  x = post_tile_position_embd.forward(ml::reshape(x, {n_embd, n_pad, n_tiles}), ratio);
  x = ml::reshape(x, {n_embd, n});
  for (const auto& layer : global_layers) x = layer->forward(x, mask);

  // Drops each tile's padding: [ne0, n_pad, T] -> [ne0, n_pos, T]
  const auto unpad = [&](ml::Tensor t) {
    t = ml::reshape(t, {t.nelements() / n, n_pad, n_tiles});
    return ml::view(t, {t.ne(0), n_pos, n_tiles, 1}, {t.nb(0), t.nb(1), t.nb(2), t.nb(2) * n_tiles},
                    0);
  };
  ml::Tensor out = unpad(x);
  if (intermediate.empty()) return ml::cont(out);
  // torch.stack(intermediates, dim=-1).reshape(..., -1): feature d of state j lands at
  // d * n_intermediate + j.
  ml::Tensor stacked = ml::reshape(intermediate[0], {1, n_embd * n});
  for (size_t j = 1; j < intermediate.size(); ++j) {
    stacked = ml::concat(stacked, ml::reshape(intermediate[j], {1, n_embd * n}), 0);
  }
  stacked = ml::reshape(stacked, {static_cast<int64_t>(intermediate.size()) * n_embd, n});
  return ml::concat(out, unpad(stacked), 0);  // [n_out, n_pos, T]
}

}  // namespace corral::model::mllama
