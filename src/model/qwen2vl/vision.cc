// Qwen2VisionTransformerPretrainedModel (transformers models/qwen2_vl/modeling_qwen2_vl.py) and
// the model::Vision around it. The tower takes the processor's patches in its merge-window order
// (each run of merge^2 rows is one merged token), embeds them with the Conv3d's two temporal
// kernel slices, rotates q/k by 2-D positions (row, column of each patch), runs pre-norm blocks
// with full attention and a quick_gelu MLP, and the merger (ln_q, merge^2 rows concatenated,
// Linear, GELU, Linear) projects to the text width. Named as llama.cpp's mmproj file names it
// (clip-impl.h), so one file or llama.cpp's two bind alike.
#include <cmath>
#include <stdexcept>
#include <string>

#include "model/qwen2vl/qwen2vl.h"

namespace corral::model::qwen2vl {
namespace {

int32_t token_id(const ml::gguf::File& file, const std::string& text) {
  const ml::gguf::Value* v = file.metadata().find("tokenizer.ggml.tokens");
  if (v != nullptr && v->is<ml::gguf::Array>()) {
    const auto& items = v->as_array().items;
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].is<std::string>() && items[i].as_string() == text) {
        return static_cast<int32_t>(i);
      }
    }
  }
  throw std::runtime_error(file.source() + ": tokenizer.ggml.tokens has no " + text +
                           " token (Qwen2-VL marks images with it)");
}

std::array<float, 3> three_floats(const ml::gguf::File& file, const std::string& key,
                                  std::array<float, 3> fallback) {
  const ml::gguf::Value* v = file.metadata().find(key);
  if (v == nullptr) return fallback;
  if (!v->is<ml::gguf::Array>() || v->as_array().items.size() != 3) {
    throw std::runtime_error(file.source() + ": " + key + " must be an array of 3 floats");
  }
  std::array<float, 3> out;
  for (size_t i = 0; i < 3; ++i) {
    const ml::gguf::Value& x = v->as_array().items[i];
    out[i] = x.is<double>() ? static_cast<float>(x.as<double>()) : x.as<float>();
  }
  return out;
}

}  // namespace

VisionOptions::VisionOptions(const ml::gguf::File& vf, const ml::gguf::File& text_file,
                             int64_t n_embd_text_) {
  const Keys k(vf, "clip");
  const std::string type = k.string_or("projector_type", k.string_or("vision.projector_type", ""));
  if (type != "qwen2vl_merger") {
    throw std::runtime_error(vf.source() + ": clip.projector_type is '" + type +
                             "', expected qwen2vl_merger");
  }
  n_embd = k.positive("vision.embedding_length");
  n_head = k.positive("vision.attention.head_count");
  n_layer = k.positive("vision.block_count", 1000);
  n_embd_text = k.positive_or("vision.projection_dim", n_embd_text_);
  eps = k.number_or("vision.attention.layer_norm_epsilon", 1e-6f);
  if (n_embd % n_head != 0 || (n_embd / n_head) % 4 != 0) {
    throw std::runtime_error(vf.source() + ": clip.vision.embedding_length " +
                             std::to_string(n_embd) + " over " + std::to_string(n_head) +
                             " heads must give a head size that is a multiple of 4");
  }
  if (n_embd_text != n_embd_text_) {
    throw std::runtime_error(vf.source() + ": clip.vision.projection_dim " +
                             std::to_string(n_embd_text) + " differs from the text model's " +
                             std::to_string(n_embd_text_) + " (" + text_file.source() + ")");
  }
  image.patch_size = k.positive("vision.patch_size", 1024);
  image.merge_size = k.positive_or("vision.spatial_merge_size", 2, 64);
  image.temporal_patch_size = 2;  // the two kernel slices v.patch_embd.weight{,.1}
  image.min_pixels = k.positive_or("vision.image_min_pixels", image.min_pixels, int64_t{1} << 31);
  image.max_pixels = k.positive_or("vision.image_max_pixels", image.max_pixels, int64_t{1} << 31);
  image.mean = three_floats(vf, "clip.vision.image_mean", image.mean);
  image.std = three_floats(vf, "clip.vision.image_std", image.std);
  vision_start = token_id(text_file, "<|vision_start|>");
  vision_end = token_id(text_file, "<|vision_end|>");
  image_pad = token_id(text_file, "<|image_pad|>");
}

class VisionBlock : public nn::Module {
 public:
  VisionBlock(nn::Module& parent, int index, const VisionOptions& o)
      : Module(parent, std::to_string(index)), o(o) {}

  const VisionOptions& o;
  nn::LayerNorm ln1{*this, "ln1", o.n_embd, o.eps};
  nn::Linear attn_q{*this, "attn_q", o.n_embd, o.n_embd, nn::Bias::kRequired};
  nn::Linear attn_k{*this, "attn_k", o.n_embd, o.n_embd, nn::Bias::kRequired};
  nn::Linear attn_v{*this, "attn_v", o.n_embd, o.n_embd, nn::Bias::kRequired};
  nn::Linear attn_out{*this, "attn_out", o.n_embd, o.n_embd, nn::Bias::kRequired};
  nn::LayerNorm ln2{*this, "ln2", o.n_embd, o.eps};
  // The MLP's width comes from the tensors: llama.cpp writes another number as
  // clip.vision.feed_forward_length for Qwen2-VL.
  nn::Linear ffn_up{*this, "ffn_up", o.n_embd, -1, nn::Bias::kRequired};
  nn::Linear ffn_down{*this, "ffn_down", -1, o.n_embd, nn::Bias::kRequired};

  // x [n_embd, n_patches] -> [n_embd, n_patches]
  ml::Tensor forward(ml::Tensor x, ml::Tensor positions, const ml::op::Rope& rope) const {
    const int64_t n = x.ne(1), hd = o.head_dim();
    // PyTorch: x = x + proj(sdpa(rope(q), rope(k), v))  with q, k, v = qkv(norm1(x)), no mask
    ml::Tensor h = ln1.forward(x);
    ml::Tensor q = ml::reshape(attn_q.forward(h), {hd, o.n_head, n});
    ml::Tensor k = ml::reshape(attn_k.forward(h), {hd, o.n_head, n});
    ml::Tensor v = ml::reshape(attn_v.forward(h), {hd, o.n_head, n});
    q = ml::rope(q, positions, {}, rope);
    k = ml::rope(k, positions, {}, rope);
    ml::Tensor qh = ml::permute(q, 0, 2, 1, 3);            // [hd, n, n_head]
    ml::Tensor kh = ml::cont(ml::permute(k, 0, 2, 1, 3));  // [hd, n, n_head]
    ml::Tensor vh = ml::cont(ml::permute(v, 0, 2, 1, 3));  // [hd, n, n_head]
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    ml::Tensor a = ml::flash_attn(qh, kh, vh, {}, scale, false);  // [hd, n_head, n]
    x = ml::add(x, attn_out.forward(ml::reshape(a, {o.n_embd, n})));
    // PyTorch: x = x + fc2(quick_gelu(fc1(norm2(x))))
    h = ffn_down.forward(ml::gelu_quick(ffn_up.forward(ln2.forward(x))));
    return ml::add(x, h);
  }
};

VisionTower::VisionTower(nn::Module& parent, const VisionOptions& o) : Module(parent, ""), o_(o) {
  for (int il = 0; il < o.n_layer; ++il) {
    blocks_.push_back(std::make_unique<VisionBlock>(blk_, il, o));
  }
  // VisionRotaryEmbedding(head_dim / 2): the first half of the head's pairs turn by the patch's
  // row, the second by its column, each half with its own frequency ladder
  // theta^(-2j / (head_dim / 2)); rotate_half pairs element i with i + head_dim / 2.
  const int32_t hd = static_cast<int32_t>(o.head_dim());
  rope_.mode = ml::op::RopeMode::kVision;
  rope_.n_dims = hd / 2;
  rope_.freq_base = o.rope_base;
  rope_.sections = {hd / 4, hd / 4, hd / 4, hd / 4};
}

VisionTower::~VisionTower() = default;

ml::Tensor VisionTower::forward(ml::Tensor pixels, ml::Tensor positions) const {
  ml::Graph& g = *pixels.graph();
  const int64_t pp = o_.image.patch_size * o_.image.patch_size;
  const int64_t n = pixels.ne(1);
  // Each row is (channel, frame, y, x), x fastest: [pp, 2, 3, n]. The Conv3d with a kernel the
  // size of its stride is a matrix product per frame; the frames' products add up.
  ml::Tensor frames = ml::reshape(pixels, {pp, 2, 3, n});
  ml::Tensor x;
  for (int64_t f = 0; f < 2; ++f) {
    const ml::Shape ne{pp, 3, n, 1};
    const ml::Strides nb{sizeof(float), frames.node().nb[2], frames.node().nb[3],
                         frames.node().nb[3] * static_cast<size_t>(n)};
    ml::Tensor frame = ml::cont(ml::view(frames, ne, nb, f * frames.node().nb[1]));
    frame = ml::reshape(frame, {3 * pp, n});  // [3 * pp, n]
    const nn::Weight& w = f == 0 ? patch_embd_0_ : patch_embd_1_;
    ml::Tensor kernel = ml::reshape(w.leaf(g), {3 * pp, o_.n_embd});  // [3 * pp, n_embd]
    ml::Tensor y = ml::mul_mat(kernel, frame);                        // [n_embd, n]
    x = x.valid() ? ml::add(x, y) : y;
  }
  for (const auto& b : blocks_) x = b->forward(x, positions, rope_);
  // Qwen2VLPatchMerger: mlp(ln_q(x).view(-1, n_embd * merge^2))
  const int64_t m2 = o_.image.merge_size * o_.image.merge_size;
  x = post_ln_.forward(x);
  x = ml::reshape(x, {o_.n_embd * m2, n / m2});  // [n_embd * merge^2, n / merge^2]
  x = mm_0_.forward(x);
  x = ml::gelu(x, ml::op::GeluForm::kErf);
  return mm_2_.forward(x);  // [n_embd_text, n / merge^2]
}

namespace {

class Vision final : public model::Vision {
 public:
  explicit Vision(const VisionTower& tower) : tower_(tower), o_(tower.options()) {}

  ImageInput preprocess(const image::Image& rgb) const override {
    return qwen2vl::preprocess(rgb, o_.image);
  }

  std::shared_ptr<const model::ImageStates> encode(ml::Executor& executor,
                                                   const ImageInput& input) const override {
    const int64_t m = o_.image.merge_size;
    const auto [gt, gh, gw] = input.grid_thw;
    const int64_t values = o_.patch_values();
    if (gt <= 0 || gh <= 0 || gw <= 0 || gh % m != 0 || gw % m != 0 || gt * gh * gw > (1 << 20) ||
        input.shape.size() != 2 || input.shape[0] != gt * gh * gw || input.shape[1] != values ||
        input.pixel_values.size() != static_cast<size_t>(gt * gh * gw * values)) {
      throw std::invalid_argument("qwen2vl: pixel_values must be [grid_t * grid_h * grid_w, " +
                                  std::to_string(values) +
                                  "] with grid_h and grid_w multiples of " + std::to_string(m));
    }
    const int64_t n = gt * gh * gw;
    // Qwen2VisionTransformerPretrainedModel.rot_pos_emb: the row and column of each patch, in
    // the processor's order (frame, merged row, merged column, row within, column within).
    std::vector<int32_t> positions(static_cast<size_t>(4 * n));
    int64_t i = 0;
    for (int64_t t = 0; t < gt; ++t) {
      for (int64_t hb = 0; hb < gh / m; ++hb) {
        for (int64_t wb = 0; wb < gw / m; ++wb) {
          for (int64_t dh = 0; dh < m; ++dh) {
            for (int64_t dw = 0; dw < m; ++dw, ++i) {
              const auto row = static_cast<int32_t>(hb * m + dh);
              const auto col = static_cast<int32_t>(wb * m + dw);
              positions[i] = row;
              positions[n + i] = col;
              positions[2 * n + i] = row;
              positions[3 * n + i] = col;
            }
          }
        }
      }
    }
    ml::Graph g;
    ml::Tensor pixels = g.leaf(ml::DType::F32, {values, n},
                               const_cast<float*>(input.pixel_values.data()), "pixel_values");
    ml::Tensor pos = g.leaf(ml::DType::I32, {4 * n}, positions.data(), "vision positions");
    ml::Tensor out = tower_.forward(pixels, pos);
    executor.compute(g, {out});

    auto states = std::make_shared<EncodedImage>();
    states->n_embd = o_.n_embd_text;
    states->grid_t = gt;
    states->grid_h = gh / m;
    states->grid_w = gw / m;
    const auto* p = static_cast<const float*>(out.data());
    states->embd.assign(p, p + out.nelements());
    return states;
  }

  Placeholder placeholder(const model::ImageStates& states) const override {
    const auto& image = dynamic_cast<const EncodedImage&>(states);
    const int64_t n = image.n();
    Placeholder p;
    p.tokens.push_back(o_.vision_start);
    p.tokens.insert(p.tokens.end(), static_cast<size_t>(n), o_.image_pad);
    p.tokens.push_back(o_.vision_end);
    p.first = 1;
    p.n = static_cast<size_t>(n);
    // get_rope_index: an image's rows sit at (frame, merged row, merged column) from where the
    // image starts.
    p.positions.resize(static_cast<size_t>(3 * n));
    int64_t i = 0;
    for (int64_t t = 0; t < image.grid_t; ++t) {
      for (int64_t h = 0; h < image.grid_h; ++h) {
        for (int64_t w = 0; w < image.grid_w; ++w, ++i) {
          p.positions[i] = static_cast<int32_t>(t);
          p.positions[n + i] = static_cast<int32_t>(h);
          p.positions[2 * n + i] = static_cast<int32_t>(w);
        }
      }
    }
    return p;
  }

  bool mrope() const override { return true; }

  size_t max_image_state_bytes() const override {
    const int64_t side = o_.image.patch_size * o_.image.merge_size;
    const int64_t rows = o_.image.max_pixels / (side * side) + 1;
    return static_cast<size_t>(rows * o_.n_embd_text) * sizeof(float);
  }

 private:
  const VisionTower& tower_;
  const VisionOptions& o_;
};

}  // namespace

std::unique_ptr<model::Vision> make_vision(const VisionTower& tower) {
  return std::make_unique<Vision>(tower);
}

}  // namespace corral::model::qwen2vl
