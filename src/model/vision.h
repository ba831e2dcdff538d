// What a vision model adds to a text model: its image processor (transformers' equivalent, with
// the settings the GGUF metadata holds), its vision encoder, and how an image sits in the prompt.
// The engine calls these; model code stays free of serving concerns.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "image/image.h"
#include "ml/backend.h"

namespace corral::model {

// What the image processor made of one image: transformers' `pixel_values` and companions.
struct ImageInput {
  std::vector<float> pixel_values;  // row-major in `shape`
  std::vector<int64_t> shape;       // PyTorch order, as transformers returns it
  // mllama: the aspect ratio chosen (1-based index into the supported ratios), the number of
  // tiles it uses and the per-tile mask (1 for the tiles in use) over max_num_tiles.
  int32_t aspect_ratio_id = 0;
  std::vector<int32_t> aspect_ratio_mask;
  // qwen2vl: patches in time, height and width (before merging).
  std::array<int64_t, 3> grid_thw{};
};

// What the vision encoder made of one image. Computed once per image and kept while sequences
// show it (the encoder cache); each architecture derives its own.
struct ImageStates {
  virtual ~ImageStates() = default;
  virtual size_t bytes() const = 0;
};

// How an image sits in the prompt: `tokens` replace the image's marker; tokens[first, first + n)
// are its rows (their embeddings come from the image, or, for cross-attention models, the token
// is where the image becomes visible). `positions` (M-RoPE models only): (t, h, w) of each row
// relative to the first row's position, [3 * n] as t..., h..., w...; the text after the image
// continues at the first row's position + max + 1.
struct Placeholder {
  std::vector<int32_t> tokens;
  size_t first = 0;
  size_t n = 0;
  std::vector<int32_t> positions;
};

class Vision {
 public:
  virtual ~Vision() = default;

  // The image processor. Throws image::Error for an image it cannot take (too small, ...).
  virtual ImageInput preprocess(const image::Image& rgb) const = 0;

  // Runs the vision encoder and projector on `input` (and, for cross-attention models, the
  // image's keys and values in every cross-attention layer), computing with `executor`.
  virtual std::shared_ptr<const ImageStates> encode(ml::Executor& executor,
                                                    const ImageInput& input) const = 0;

  virtual Placeholder placeholder(const ImageStates& states) const = 0;

  // Whether the text model rotates by M-RoPE sections (Batch::rope_positions must be filled).
  virtual bool mrope() const { return false; }

  // Bytes of the vision weights (part of the model's file size) are counted by the runner from
  // the file; this is what one encoded image keeps at most, for memory accounting.
  virtual size_t max_image_state_bytes() const = 0;
};

}  // namespace corral::model
