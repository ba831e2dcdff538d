// Images in a sequence: prompts whose text holds `[img-N]` markers (as Ollama writes them in
// front of a message's content) become tokens with images placed among them; each image is
// encoded once (the encoder cache keeps recent ones by digest) and its placeholder tokens are
// spliced in where its marker was. Batches then carry, per token, the image rows it stands for,
// the image it sees (cross-attention models) and its M-RoPE position.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ml/backend.h"
#include "model/batch.h"
#include "model/vision.h"

namespace corral::runner {

// An image of a prompt, before encoding.
struct PromptImage {
  size_t at = 0;  // the index of the prompt token it goes before (prompt.size(): at the end)
  std::shared_ptr<const model::ImageInput> input;
  std::string digest;  // identifies the image (the sha256 of its file)
};

// An image placed in a sequence's tokens.
struct ImageSpan {
  size_t start = 0;                // the placeholder's first token
  size_t length = 0;               // the placeholder's tokens
  size_t first = 0;                // the first of its image rows (a sequence index)
  size_t n = 0;                    // image rows
  int32_t advance = 0;             // M-RoPE: positions the rows take (max relative position + 1)
  std::vector<int32_t> positions;  // M-RoPE: [3 * n] (t..., h..., w...) relative to the first row
  std::shared_ptr<const model::ImageStates> states;
  std::string digest;
};

// A sequence's images, in order. Answers per-token questions for every index of the sequence,
// prompt and generated tokens alike.
class SequenceImages {
 public:
  SequenceImages() = default;
  SequenceImages(std::vector<ImageSpan> spans, bool mrope)
      : spans_(std::move(spans)), mrope_(mrope) {}

  bool empty() const { return spans_.empty(); }
  bool mrope() const { return mrope_; }
  const std::vector<ImageSpan>& spans() const { return spans_; }

  // The M-RoPE position (t, h, w) of token i.
  std::array<int32_t, 3> rope_position(size_t i) const;
  // The latest image whose rows start at or before token i (null: none).
  const model::ImageStates* seen_at(size_t i) const;
  // The longest prefix of `common` tokens whose images are the same in both (an image of either
  // that starts before `common` and has no equal in the other cuts the prefix at its start).
  static size_t shared_prefix(const SequenceImages& a, const SequenceImages& b, size_t common);

 private:
  std::vector<ImageSpan> spans_;
  bool mrope_ = false;
};

// Adds token i of a sequence to a batch with its multimodal fields. finish() lays the fields out
// as model::Batch wants them (nothing for a batch without images on a model without M-RoPE).
class BatchImages {
 public:
  void clear();
  // Call right after batch.add() of the sequence's token `index`.
  void added(const model::Batch& batch, const SequenceImages& images, size_t index, int32_t pos);
  void finish(model::Batch& batch, bool mrope);

 private:
  std::vector<std::array<int32_t, 3>> rope_;
  std::vector<const model::ImageStates*> cross_;
  std::vector<model::Batch::ImageRows> rows_;
  bool any_cross_ = false;
};

// Encodes images with its own CPU backend (so that encoding does not stop the sequences being
// decoded) and keeps the most recent ones by digest. Thread-safe; encodings run one at a time.
class ImageEncoder {
 public:
  // `vision` must outlive the encoder; n_threads as the engine's; `constant`: the weights' memory
  // (the model files' tensor data); `capacity` images are kept.
  // `log` (optional) is told of every encoding: the image's digest, rows and time.
  ImageEncoder(const model::Vision& vision, int n_threads,
               std::vector<std::span<const std::byte>> constant, size_t capacity,
               std::function<void(const std::string&)> log = nullptr);
  ~ImageEncoder();

  std::shared_ptr<const model::ImageStates> encode(const PromptImage& image);
  size_t encoded() const;  // how many times the encoder ran
  size_t capacity() const { return capacity_; }

 private:
  const model::Vision& vision_;
  size_t capacity_;
  mutable std::mutex mu_;
  std::unique_ptr<ml::Backend> backend_;
  std::unique_ptr<ml::Executor> executor_;
  std::list<std::pair<std::string, std::shared_ptr<const model::ImageStates>>> recent_;
  size_t encoded_ = 0;
  std::function<void(const std::string&)> log_;
};

// Splices the images' placeholders into `prompt` (encoding them with `encoder`); returns the
// sequence's images. Throws std::invalid_argument for images out of order or out of range.
SequenceImages expand_images(const model::Vision& vision, ImageEncoder& encoder,
                             std::vector<int32_t>& prompt, std::span<const PromptImage> images);

// The marker Ollama writes for image n of a request ("[img-0]").
std::string image_marker(size_t n);

// Splits a rendered prompt at its image markers: `tokenize(text, first)` gives the tokens of each
// piece of text (first: the piece at the start of the prompt, which may take a BOS). Markers of
// images the request does not have stay text; an image whose marker is not in the text (cut
// with old messages) is left out. `inputs[n]` is image n; `digests[n]` its digest.
std::vector<int32_t> tokenize_with_images(
    std::string_view text, std::span<const std::shared_ptr<const model::ImageInput>> inputs,
    std::span<const std::string> digests,
    const std::function<std::vector<int32_t>(std::string_view, bool first)>& tokenize,
    std::vector<PromptImage>& images);

}  // namespace corral::runner
