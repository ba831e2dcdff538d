// Sliding-window attention layers (Mistral, Gemma 2/3): a token at position p attends to the
// positions p - window + 1 .. p of its sequence, as transformers' sliding_window_overlay
// (kv_idx > q_idx - sliding_window). Such layers never look further back, so their keys and
// values live in cells of their own (Causal::sliding()) that hold, per sequence, the last
// window - 1 positions plus the batch being placed: their memory is bounded by the window and
// the batch, not by the context. Before a batch is placed, the positions of its sequences that
// no token of the batch (or after it) can see are freed. Those positions are gone for good: a
// prefix that ends before them cannot be resumed (Causal::reusable).
#pragma once

#include <cstdint>

#include "kvcache/causal.h"

namespace corral::kvcache {

// Whether a token at token_pos sees a cell at cell_pos <= token_pos (window <= 0: always).
inline bool in_window(int32_t token_pos, int32_t cell_pos, int32_t window) {
  return window <= 0 || token_pos - cell_pos < window;
}

// The options of the sliding cells of a cache made with `o`: as many cells as the windows of
// max_seqs sequences and one batch need (per sequence range with seq_cells), never more than
// num_ctx.
CausalOptions sliding_options(const CausalOptions& o);

}  // namespace corral::kvcache
