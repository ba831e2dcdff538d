// A batch: tokens of one or more sequences decoded in one forward pass.
#pragma once

#include <cstdint>
#include <vector>

namespace corral::model {

struct ImageStates;

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;  // of each token in its sequence
  std::vector<int32_t> seq_ids;    // the sequence of each token
  // Indices into tokens whose logits are wanted, ascending; the logits' columns follow them.
  std::vector<int32_t> outputs;

  // Multimodal batches (all empty in text-only ones):
  // batch tokens [first, first + n) are rows [row, row + n) of an image's placeholder; models
  // that embed images replace those tokens' embeddings with the image's rows.
  struct ImageRows {
    int32_t first = 0;
    int32_t n = 0;
    int32_t row = 0;
    const ImageStates* states = nullptr;
  };
  std::vector<ImageRows> images;
  // Cross-attention models: for each token, the latest image of its sequence at or before it
  // (null: none yet). Empty when no token of the batch sees an image.
  std::vector<const ImageStates*> cross;
  // M-RoPE models: [4 * n_tokens] as t..., h..., w..., then n_tokens zeros.
  std::vector<int32_t> rope_positions;

  void add(int32_t token, int32_t position, int32_t seq, bool logits) {
    if (logits) outputs.push_back(static_cast<int32_t>(tokens.size()));
    tokens.push_back(token);
    positions.push_back(position);
    seq_ids.push_back(seq);
  }
  void clear() {
    tokens.clear();
    positions.clear();
    seq_ids.clear();
    outputs.clear();
    images.clear();
    cross.clear();
    rope_positions.clear();
  }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

}  // namespace corral::model
