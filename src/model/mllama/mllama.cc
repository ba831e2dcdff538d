// mllama (Llama 3.2 Vision), transformers' MllamaForConditionalGeneration
// (models/mllama/modeling_mllama.py): the vision tower (vision.cc) and the projector
// (multi_modal_projector, GGUF mm.0) turn an image into keys and values for the cross-attention
// layers of the text model (text.cc). GGUF names and keys follow Ollama's mllama
// (convert/convert_mllama.go), one file holding both parts.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "model/mllama/image.h"
#include "model/mllama/mllama.h"

namespace corral::model::mllama {

namespace {

std::vector<int> int_array(const ml::gguf::File& file, const std::string& key, int64_t below) {
  std::vector<int> out;
  const ml::gguf::Value* v = file.metadata().find(key);
  if (v == nullptr) return out;
  if (!v->is<ml::gguf::Array>())
    throw std::runtime_error(file.source() + ": " + key + " is not an array");
  for (const ml::gguf::Value& item : v->as_array().items) {
    const auto i = item.as_integer();
    if (!i || *i < 0 || *i >= below) {
      throw std::runtime_error(file.source() + ": " + key + " holds a value outside 0.." +
                               std::to_string(below - 1));
    }
    out.push_back(static_cast<int>(*i));
  }
  return out;
}

std::vector<float> float_array(const ml::gguf::File& file, const std::string& key, size_t n) {
  const ml::gguf::Value* v = file.metadata().find(key);
  if (v == nullptr) return {};
  std::vector<float> out;
  if (v->is<ml::gguf::Array>()) {
    for (const ml::gguf::Value& item : v->as_array().items) {
      if (item.is<float>()) out.push_back(item.as<float>());
      if (item.is<double>()) out.push_back(static_cast<float>(item.as<double>()));
    }
  }
  if (out.size() != n) {
    throw std::runtime_error(file.source() + ": " + key + " must hold " + std::to_string(n) +
                             " numbers");
  }
  return out;
}

}  // namespace

TextOptions::TextOptions(const ml::gguf::File& file) {
  const Keys k(file, "mllama");
  Config& c = config;
  c.architecture = "mllama";
  c.n_layer = static_cast<int>(k.positive("block_count"));
  c.n_embd = k.positive("embedding_length");
  // output.weight projects to the text vocabulary; token_embd has 8 more rows, <|image|> first.
  const ml::gguf::TensorInfo* out = file.find_tensor("output.weight");
  n_output = out != nullptr ? out->ne[1] : k.positive("vocab_size");
  c.n_vocab = n_output;
  if (const auto* tokens = file.metadata().find("tokenizer.ggml.tokens");
      tokens != nullptr && tokens->is<ml::gguf::Array>()) {
    const auto n = static_cast<int64_t>(tokens->as_array().items.size());
    const ml::gguf::TensorInfo* embd = file.find_tensor("token_embd.weight");
    if (n > n_output && embd != nullptr && n <= embd->ne[1]) c.n_vocab = n;
  }
  c.n_head = k.positive("attention.head_count");
  c.n_head_kv = k.positive_or("attention.head_count_kv", c.n_head);
  c.head_dim_k = k.positive_or("attention.key_length", c.n_embd / c.n_head);
  c.head_dim_v = k.positive_or("attention.value_length", c.head_dim_k);
  c.n_ctx_train = k.positive_or("context_length", 131072);
  n_ff = k.positive("feed_forward_length");
  eps = k.number_or("attention.layer_norm_rms_epsilon", 1e-5f);
  cross_layers = int_array(file, k.full("attention.cross_attention_layers"), c.n_layer);

  rope.mode = ml::op::RopeMode::kNormal;  // Q/K stored permuted, as llama's
  rope.n_dims = static_cast<int32_t>(k.positive_or("rope.dimension_count", c.head_dim_k));
  rope.freq_base = k.number_or("rope.freq_base", 500000.0f);
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

bool TextOptions::is_cross(int layer) const {
  for (int l : cross_layers) {
    if (l == layer) return true;
  }
  return false;
}

nn::AttentionOptions TextOptions::attention() const {
  return {.n_embd = config.n_embd,
          .n_head = config.n_head,
          .n_head_kv = config.n_head_kv,
          .head_dim_k = config.head_dim_k,
          .head_dim_v = config.head_dim_v};
}

VisionOptions::VisionOptions(const ml::gguf::File& file) {
  const Keys k(file, "mllama");
  n_embd = k.positive("vision.embedding_length");
  n_head = k.positive("vision.attention.head_count");
  n_ff = k.positive("vision.feed_forward_length");
  n_layer = static_cast<int>(k.positive("vision.block_count", 1000));
  n_global = static_cast<int>(k.positive("vision.global.block_count", 1000));
  image_size = k.positive("vision.image_size", 8192);
  patch_size = k.positive("vision.patch_size", 8192);
  n_tiles = k.positive_or("vision.max_num_tiles", 4, 64);
  n_channels = k.positive_or("vision.num_channels", 3, 16);
  eps = k.number_or("vision.attention.layer_norm_epsilon", 1e-5f);
  intermediate = int_array(file, k.full("vision.intermediate_layers_indices"), n_layer + 1);
  if (n_embd % n_head != 0 || image_size % patch_size != 0) {
    throw std::runtime_error(
        file.source() + ": mllama.vision.embedding_length " + std::to_string(n_embd) +
        " must be a multiple of the head count " + std::to_string(n_head) + " and image_size " +
        std::to_string(image_size) + " of patch_size " + std::to_string(patch_size));
  }
  const ml::gguf::TensorInfo* t = file.find_tensor("v.pre_tile_position_embd.weight");
  if (t == nullptr) {
    throw std::runtime_error(file.source() +
                             ": no v.pre_tile_position_embd.weight (the vision tower); a text-only "
                             "mllama file is not supported");
  }
  n_ratio_ids = t->ne[1];
}

size_t CrossStates::bytes() const {
  size_t b = 0;
  for (const auto& x : k) b += x.size() * sizeof(float);
  for (const auto& x : v) b += x.size() * sizeof(float);
  return b;
}

namespace {

class Mllama final : public Model, public Vision {
 public:
  Mllama(TextOptions text_options, VisionOptions vision_options, ImageOptions image,
         int32_t image_token)
      : Model(text_options.config),
        to_(std::move(text_options)),
        vo_(std::move(vision_options)),
        image_(image),
        image_token_(image_token) {}

  ml::Tensor shift(ml::Tensor keys, ml::Tensor delta, int) const override {
    return text.shift(keys, delta);
  }
  const Vision* vision() const override { return this; }

  ImageInput preprocess(const image::Image& rgb) const override {
    return mllama::preprocess(rgb, image_);
  }

  std::shared_ptr<const ImageStates> encode(ml::Executor& executor,
                                            const ImageInput& input) const override {
    VisionInputs in = v.inputs(input);
    int64_t n_used = 0;
    while (n_used < vo_.n_tiles && input.aspect_ratio_mask[n_used] != 0) ++n_used;

    ml::Graph g;
    ml::Tensor x = v.forward(g, in);  // [n_out, n_positions, n_tiles]
    // The tiles in use, as one sequence of image tokens: [n_out, n_kv]
    const int64_t n_kv = n_used * vo_.n_positions();
    x = ml::view(x, {vo_.n_out(), n_kv, 1, 1}, {x.nb(0), x.nb(1), x.nb(1) * n_kv, x.nb(1) * n_kv},
                 0);
    ml::Tensor states = mm_0.forward(x);  // [n_embd, n_kv]
    std::vector<ml::Tensor> outputs;
    for (const CrossBlock* b : text.cross_blocks()) {
      const auto [k, val] = b->keys_values(states);
      outputs.push_back(k);
      outputs.push_back(val);
    }
    executor.compute(g, outputs);

    auto s = std::make_shared<CrossStates>();
    s->n_kv = n_kv;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const auto* p = static_cast<const float*>(outputs[i].data());
      (i % 2 == 0 ? s->k : s->v).emplace_back(p, p + outputs[i].nelements());
    }
    return s;
  }

  Placeholder placeholder(const ImageStates&) const override {
    return {.tokens = {image_token_}, .first = 0, .n = 1, .positions = {}};
  }

  size_t max_image_state_bytes() const override {
    const Config& c = config();
    return text.cross_blocks().size() * 2 * static_cast<size_t>(c.head_dim_k * c.n_head_kv) *
           static_cast<size_t>(vo_.n_tiles * vo_.n_positions()) * sizeof(float);
  }

 private:
  ml::Tensor build(const Inputs& in, kvcache::Causal& cache) const override {
    return text.forward(in, cache);
  }

  TextOptions to_;
  VisionOptions vo_;
  ImageOptions image_;
  int32_t image_token_;

 public:
  TextModel text{*this, to_};
  VisionModel v{*this, vo_};
  nn::Module mm{*this, "mm"};
  nn::Linear mm_0{mm, "0", vo_.n_out(), to_.config.n_embd, nn::Bias::kRequired};
};

}  // namespace

std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector) {
  TextOptions t(file);
  check_config(file, t.config, t.rope);
  // The vision tower is in the model's file (corral's converter, Ollama's single blob) or in a
  // projector file of its own (a store's projector layer), with its mllama.vision.* keys.
  const ml::gguf::File& vision_file = projector != nullptr ? *projector : file;
  VisionOptions v(vision_file);

  const Keys k(file, "mllama");
  const Keys kv(vision_file, "mllama");
  ImageOptions image;
  image.image_size = v.image_size;
  image.max_image_tiles = kv.positive_or("vision.max_image_tiles", v.n_tiles, v.n_tiles);
  if (const auto mean = float_array(vision_file, kv.full("vision.image_mean"), 3); !mean.empty()) {
    std::copy(mean.begin(), mean.end(), image.mean.begin());
  }
  if (const auto dev = float_array(vision_file, kv.full("vision.image_std"), 3); !dev.empty()) {
    std::copy(dev.begin(), dev.end(), image.std.begin());
  }
  image.rescale_factor = kv.number_or("vision.rescale_factor", image.rescale_factor);

  // <|image|> follows the text vocabulary.
  const int64_t image_token = k.positive_or("vocab_size", t.n_output);
  return std::make_unique<Mllama>(std::move(t), std::move(v), image,
                                  static_cast<int32_t>(image_token));
}

}  // namespace corral::model::mllama
