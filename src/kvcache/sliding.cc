// The sliding-window part of the causal cache (see sliding.h): sizing, eviction and the
// prefixes it can resume.
#include "kvcache/sliding.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace corral::kvcache {

CausalOptions sliding_options(const CausalOptions& o) {
  CausalOptions s = o;
  const int64_t per_seq = std::max<int64_t>(1, o.window) - 1 + std::max<int64_t>(1, o.max_batch);
  if (o.seq_cells > 0) {
    const int64_t n_seq = (o.num_ctx + o.seq_cells - 1) / o.seq_cells;
    s.seq_cells = std::min(o.seq_cells, per_seq);
    s.num_ctx = s.seq_cells * n_seq;
  } else {
    const int64_t want = std::max<int64_t>(1, o.max_seqs) * (std::max<int64_t>(1, o.window) - 1) +
                         std::max<int64_t>(1, o.max_batch);
    s.num_ctx = std::min(o.num_ctx, want);
  }
  return s;
}

Causal::Causal(SlidingPart, int n_layer, int64_t n_head_kv, int64_t head_dim_k, int64_t head_dim_v,
               const CausalOptions& options)
    : n_head_kv_(n_head_kv),
      head_dim_k_(head_dim_k),
      head_dim_v_(head_dim_v),
      dtype_(options.dtype),
      pad_(std::max<int64_t>(1, options.pad)),
      causal_(options.causal),
      window_(options.window) {
  const CausalOptions s = sliding_options(options);
  seq_cells_ = std::max<int64_t>(0, s.seq_cells);
  cells_.resize(static_cast<size_t>(s.num_ctx));
  allocate(n_layer, s, true);
}

void Causal::evict(std::span<const int32_t> positions, std::span<const int32_t> seq_ids) {
  // The earliest position of each sequence in the batch: tokens from it on see nothing at or
  // before first - window.
  std::vector<std::pair<int32_t, int32_t>> first;  // (seq, position)
  for (size_t i = 0; i < positions.size(); ++i) {
    auto it = std::find_if(first.begin(), first.end(),
                           [&](const auto& f) { return f.first == seq_ids[i]; });
    if (it == first.end()) {
      first.emplace_back(seq_ids[i], positions[i]);
    } else {
      it->second = std::min(it->second, positions[i]);
    }
  }
  for (const auto& [seq, pos] : first) {
    const int32_t end = pos - window_ + 1;  // positions below it are out of every window
    if (end <= 0) continue;
    for (Cell& cell : cells_) {
      if (cell.pos < 0 || cell.pos >= end || !cell.has(seq)) continue;
      std::erase(cell.seqs, seq);
      if (cell.seqs.empty()) cell.pos = -1;
    }
  }
}

int32_t Causal::reusable(int32_t seq, int32_t len) const {
  if (len <= 0 || !sliding_) return std::max(0, len);
  // A token at len attends to len - window + 1 .. len - 1: all must still be cached.
  const Causal& s = *sliding_;
  const int32_t from = std::max(0, len - s.window_ + 1);
  std::vector<bool> have(static_cast<size_t>(len - from), false);
  for (const Cell& cell : s.cells_) {
    if (cell.pos >= from && cell.pos < len && cell.has(seq)) {
      have[static_cast<size_t>(cell.pos - from)] = true;
    }
  }
  return std::all_of(have.begin(), have.end(), [](bool b) { return b; }) ? len : 0;
}

}  // namespace corral::kvcache
