// The causal KV cache: per layer, one key row and one value row per cell, stored in leaves the
// cache owns and the graph writes with set_rows. A cell holds one position and may belong to
// several sequences (a shared prompt prefix). For each batch the cache picks free cells and
// builds the attention mask: a token sees the cells of its own sequence at positions <= its own.
// Mirrors Ollama's kvcache.Causal (kvcache/causal.go). Models with sliding-window layers keep
// those layers in a second, window-bounded set of cells (kvcache/sliding.h).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <vector>

#include "ml/backend.h"
#include "ml/graph.h"

namespace corral::kvcache {

struct CausalOptions {
  int64_t num_ctx = 2048;            // cells
  ml::DType dtype = ml::DType::F16;  // F16 or F32
  // When > 0, sequence s keeps its cells in [s * seq_cells, (s + 1) * seq_cells) (then num_ctx
  // should be a multiple of it). A sequence's cells then sit where they would if it were alone,
  // so other sequences in the same batches do not change the order in which attention sums over
  // them: its results are bit-identical whatever runs beside it.
  int64_t seq_cells = 0;
  // The attended range is rounded up to a multiple of this, so that consecutive decode steps
  // record graphs of the same shape.
  int64_t pad = 32;
  // False for encoders (BERT): a token sees every cell of its sequence, later positions too.
  bool causal = true;
  // Where layer il's keys and values live: a device backend's memory for offloaded layers
  // (ml::Backend::allocate). Buffers it returns must come zeroed; without it, or when it returns
  // null, the cache allocates zeroed host memory.
  std::function<std::unique_ptr<ml::Buffer>(int layer, size_t bytes)> allocate = nullptr;

  // Sliding-window layers (see kvcache/sliding.h): with window > 0, the layers marked in
  // `sliding` (one flag per layer; empty: none) attend to the last `window` positions of their
  // sequence, the token's own included, and keep only those (plus the batch) in their cells.
  int32_t window = 0;
  std::vector<bool> sliding;
  // Sizes the sliding layers' cells: the most tokens of one sequence in a batch, and (without
  // seq_cells) the most sequences whose windows are kept at once.
  int64_t max_batch = 512;
  int64_t max_seqs = 1;
};

// No free cells left for a batch: the caller shifts the context or removes a sequence.
class FullError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Causal {
 public:
  Causal(int n_layer, int64_t n_head_kv, int64_t head_dim_k, int64_t head_dim_v,
         CausalOptions options = {});

  // Places a batch (position and sequence of each token) in free cells and records its inputs
  // (cell indices, mask) in g. Throws FullError when the cells do not suffice (nothing changes).
  void start_forward(ml::Graph& g, std::span<const int32_t> positions,
                     std::span<const int32_t> seq_ids);

  struct Entries {
    ml::Tensor k;     // [head_dim_k, n_kv, n_head_kv]
    ml::Tensor v;     // [head_dim_v, n_kv, n_head_kv]
    ml::Tensor mask;  // f32 [n_kv, n_tokens]: 0 where the token may attend, -inf elsewhere
  };
  // Writes the batch's keys [head_dim_k, n_head_kv, n_tokens] and values [head_dim_v, n_head_kv,
  // n_tokens] of a layer into its cells; returns the cells to attend (reads that follow the
  // writes in the graph).
  Entries update(int layer, ml::Tensor k, ml::Tensor v);

  // Drops sequence seq at positions [p0, p1) (p1 < 0: to the end); cells of no sequence are free.
  void remove(int32_t seq, int32_t p0 = 0, int32_t p1 = -1);
  // Makes the cells of src at positions < len part of dst as well (prefix sharing).
  void copy_prefix(int32_t src, int32_t dst, int32_t len);

  // Re-rotates keys [head_dim_k, n_head_kv, n] (f32) by a position delta (I32 [n]) for a layer;
  // the model supplies it, as only the model knows its RoPE.
  using ShiftFn = std::function<ml::Tensor(ml::Tensor keys, ml::Tensor delta, int layer)>;
  // Context shift for a full sequence: keeps its first num_keep positions, drops the oldest
  // half of the rest and moves the later positions down, re-rotating their keys. Returns the
  // number of positions dropped. std::logic_error if a cell to move is shared with another
  // sequence.
  int32_t shift(ml::Executor& executor, int32_t seq, int32_t num_keep, const ShiftFn& rotate);

  // One past the largest position of seq in the cache (0 when it has none).
  int32_t next_position(int32_t seq) const;
  // The longest prefix, at most len positions, of seq the cache can continue from: len, or 0
  // when sliding layers have dropped positions a token at len would still attend to.
  int32_t reusable(int32_t seq, int32_t len) const;
  int64_t num_ctx() const { return static_cast<int64_t>(cells_.size()); }
  int64_t used_cells() const;
  // Bytes of keys and values this set of cells holds (the sliding layers' are in sliding()).
  size_t bytes() const;
  // The cells of the sliding-window layers; null when the model has none.
  const Causal* sliding() const { return sliding_.get(); }
  int32_t window() const { return window_; }
  ml::DType dtype() const { return dtype_; }
  // Of the last batch: the cell of each token, the attended cells and the mask [n_kv, n_tokens].
  std::span<const int32_t> batch_cells() const { return cell_of_token_; }
  int64_t n_kv() const { return n_kv_; }
  std::span<const float> mask() const { return mask_; }

 private:
  struct Cell {
    int32_t pos = -1;  // -1: free
    std::vector<int32_t> seqs;
    bool has(int32_t s) const;
  };
  struct SlidingPart {};  // tag: the constructor of sliding_
  Causal(SlidingPart, int n_layer, int64_t n_head_kv, int64_t head_dim_k, int64_t head_dim_v,
         const CausalOptions& options);
  void allocate(int n_layer, const CausalOptions& options, bool sliding);
  ml::Tensor layer_leaf(ml::Graph& g, int layer, bool value) const;
  void place(ml::Graph& g, std::span<const int32_t> positions, std::span<const int32_t> seq_ids);
  // Frees the cells of the batch's sequences that no token from the batch on can see
  // (sliding.cc).
  void evict(std::span<const int32_t> positions, std::span<const int32_t> seq_ids);
  void shift_cells(ml::Executor& executor, int32_t seq, int32_t num_keep, int32_t discard,
                   const ShiftFn& rotate);

  int64_t n_head_kv_, head_dim_k_, head_dim_v_;
  ml::DType dtype_;
  int64_t pad_;
  int64_t seq_cells_;
  bool causal_ = true;
  std::vector<Cell> cells_;
  int32_t window_ = 0;  // > 0: these are sliding cells
  // keys_/values_ index of each layer; -1 for a layer stored in sliding_.
  std::vector<int> slot_;
  std::vector<std::unique_ptr<ml::Buffer>> keys_, values_;
  std::unique_ptr<Causal> sliding_;

  // The current batch.
  ml::Graph* graph_ = nullptr;
  int64_t n_kv_ = 0;
  int64_t n_tokens_ = 0;
  std::vector<int32_t> cell_of_token_;
  std::vector<float> mask_;
  ml::Tensor cells_leaf_, mask_leaf_;
};

}  // namespace corral::kvcache
