// Qwen2-VL (transformers models/qwen2_vl/modeling_qwen2_vl.py, Qwen2VLForConditionalGeneration):
// the text decoder (text.cc) and, when the file or a projector holds one, the vision tower
// (vision.cc). GGUF "qwen2vl" as llama.cpp writes it; the vision part is read either from the
// same file (corral's converter writes one file) or from llama.cpp's mmproj projector file
// (general.architecture "clip"), which use the same tensor names and clip.* keys.
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "model/qwen2vl/qwen2vl.h"

namespace corral::model::qwen2vl {
namespace {

// Whether a file holds a vision tower's keys.
bool has_vision(const ml::gguf::File& file) {
  return file.metadata().contains("clip.vision.embedding_length");
}

class Qwen2vl final : public Model {
 public:
  Qwen2vl(TextOptions t, std::optional<VisionOptions> v)
      : Model(t.config), text_o_(std::move(t)), vision_o_(std::move(v)) {
    if (vision_o_) {
      tower_ = std::make_unique<VisionTower>(*this, *vision_o_);
      vision_ = make_vision(*tower_);
    }
  }

  ml::Tensor shift(ml::Tensor keys, ml::Tensor delta, int) const override {
    return text_.shift(keys, delta);
  }

  const model::Vision* vision() const override { return vision_.get(); }

 private:
  ml::Tensor build(const Inputs& in, kvcache::Causal& cache) const override {
    ml::Tensor x = text_.embed(in);  // [n_embd, n_tokens]
    ml::Tensor pos = in.rope_positions;
    if (!pos.valid()) {
      // Text alone: time, row and column all advance with the position.
      ml::Tensor two = ml::concat(in.positions, in.positions, 0);
      pos = ml::concat(two, two, 0);  // I32 [4 * n_tokens]
    }
    return text_.forward(x, pos, in, cache);
  }

  TextOptions text_o_;
  std::optional<VisionOptions> vision_o_;
  Text text_{*this, text_o_};
  std::unique_ptr<VisionTower> tower_;
  std::unique_ptr<model::Vision> vision_;
};

}  // namespace

std::unique_ptr<Model> make(const ml::gguf::File& file, const ml::gguf::File* projector) {
  TextOptions o(file);
  check_config(file, o.config, o.rope);
  std::optional<VisionOptions> v;
  if (projector != nullptr) {
    const auto& meta = projector->metadata();
    const std::string arch =
        meta.contains("general.architecture") ? meta.get_string("general.architecture") : "";
    if (arch != "clip" || !has_vision(*projector)) {
      throw std::runtime_error(projector->source() +
                               ": not a vision projector (general.architecture '" + arch +
                               "', expected clip with clip.vision.* keys)");
    }
    v.emplace(*projector, file, o.config.n_embd);
  } else if (has_vision(file)) {
    v.emplace(file, file, o.config.n_embd);
  }
  return std::make_unique<Qwen2vl>(std::move(o), std::move(v));
}

}  // namespace corral::model::qwen2vl
