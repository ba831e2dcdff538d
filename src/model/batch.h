// A batch: tokens of one or more sequences decoded in one forward pass.
#pragma once

#include <cstdint>
#include <vector>

namespace corral::model {

struct Batch {
  std::vector<int32_t> tokens;
  std::vector<int32_t> positions;  // of each token in its sequence
  std::vector<int32_t> seq_ids;    // the sequence of each token
  // Indices into tokens whose logits are wanted, ascending; the logits' columns follow them.
  std::vector<int32_t> outputs;

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
  }
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

}  // namespace corral::model
