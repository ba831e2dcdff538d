#include "kvcache/causal.h"

#include "kvcache/sliding.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <limits>
#include <string>

namespace corral::kvcache {

bool Causal::Cell::has(int32_t s) const {
  return std::find(seqs.begin(), seqs.end(), s) != seqs.end();
}

Causal::Causal(int n_layer, int64_t n_head_kv, int64_t head_dim_k, int64_t head_dim_v,
               CausalOptions options)
    : n_head_kv_(n_head_kv),
      head_dim_k_(head_dim_k),
      head_dim_v_(head_dim_v),
      dtype_(options.dtype),
      pad_(std::max<int64_t>(1, options.pad)),
      seq_cells_(std::max<int64_t>(0, options.seq_cells)),
      causal_(options.causal),
      cells_(static_cast<size_t>(std::max<int64_t>(0, options.num_ctx))) {
  if (dtype_ != ml::DType::F16 && dtype_ != ml::DType::F32) {
    throw std::invalid_argument("kv cache: storage must be f16 or f32, not " +
                                std::string(ml::dtype_name(dtype_)));
  }
  if (options.num_ctx <= 0 || n_layer <= 0) {
    throw std::invalid_argument("kv cache: num_ctx and the layer count must be positive");
  }
  const bool any_sliding =
      options.window > 0 &&
      std::find(options.sliding.begin(), options.sliding.end(), true) != options.sliding.end();
  if (any_sliding && options.sliding.size() != static_cast<size_t>(n_layer)) {
    throw std::invalid_argument("kv cache: " + std::to_string(options.sliding.size()) +
                                " sliding-layer flags for " + std::to_string(n_layer) + " layers");
  }
  if (!any_sliding) options.sliding.clear();
  allocate(n_layer, options, false);
  if (any_sliding) {
    sliding_.reset(new Causal(SlidingPart{}, n_layer, n_head_kv, head_dim_k, head_dim_v, options));
  }
}

void Causal::allocate(int n_layer, const CausalOptions& options, bool sliding) {
  const auto bytes = [&](int64_t head_dim) {
    return ml::row_size(dtype_, head_dim * n_head_kv_) * cells_.size();
  };
  // Zeroed: cells never written are read under a -inf mask, and 0 * anything stays finite.
  auto make = [&](int il, size_t n) -> std::unique_ptr<ml::Buffer> {
    if (options.allocate) {
      if (auto b = options.allocate(il, n)) return b;
    }
    auto b = std::make_unique<ml::HostBuffer>(n);
    std::memset(b->data(), 0, b->size());
    return b;
  };
  slot_.assign(static_cast<size_t>(n_layer), -1);
  for (int il = 0; il < n_layer; ++il) {
    const bool is_sliding = !options.sliding.empty() && options.sliding[static_cast<size_t>(il)];
    if (is_sliding != sliding) continue;
    slot_[static_cast<size_t>(il)] = static_cast<int>(keys_.size());
    keys_.push_back(make(il, bytes(head_dim_k_)));
    values_.push_back(make(il, bytes(head_dim_v_)));
  }
}

ml::Tensor Causal::layer_leaf(ml::Graph& g, int layer, bool value) const {
  const int64_t row = (value ? head_dim_v_ : head_dim_k_) * n_head_kv_;
  const auto slot = static_cast<size_t>(slot_[static_cast<size_t>(layer)]);
  ml::Buffer& buf = value ? *values_[slot] : *keys_[slot];
  return g.leaf(dtype_, {row, num_ctx()}, buf.data(),
                (value ? "cache_v_l" : "cache_k_l") + std::to_string(layer));
}

void Causal::start_forward(ml::Graph& g, std::span<const int32_t> positions,
                           std::span<const int32_t> seq_ids) {
  if (positions.size() != seq_ids.size() || positions.empty()) {
    throw std::invalid_argument("kv cache: a batch needs one position and sequence per token");
  }
  place(g, positions, seq_ids);
  if (!sliding_) return;
  try {
    sliding_->place(g, positions, seq_ids);
  } catch (...) {
    for (int32_t c : cell_of_token_) {
      cells_[static_cast<size_t>(c)].pos = -1;
      cells_[static_cast<size_t>(c)].seqs.clear();
    }
    throw;
  }
}

void Causal::place(ml::Graph& g, std::span<const int32_t> positions,
                   std::span<const int32_t> seq_ids) {
  if (window_ > 0) evict(positions, seq_ids);
  const size_t n = positions.size();
  cell_of_token_.clear();
  if (seq_cells_ == 0) {
    for (size_t c = 0; c < cells_.size() && cell_of_token_.size() < n; ++c) {
      if (cells_[c].pos < 0) cell_of_token_.push_back(static_cast<int32_t>(c));
    }
    if (cell_of_token_.size() < n) {
      throw FullError("kv cache full: " + std::to_string(n) + " tokens need cells, " +
                      std::to_string(cell_of_token_.size()) + " of " +
                      std::to_string(cells_.size()) + " are free");
    }
  } else {
    // Each sequence takes the first free cells of its own range, in batch order; the cursor of
    // a sequence remembers where its last pick was.
    std::vector<std::pair<int32_t, int64_t>> cursors;
    for (size_t i = 0; i < n; ++i) {
      const int32_t s = seq_ids[i];
      const int64_t begin = static_cast<int64_t>(s) * seq_cells_;
      const int64_t end = std::min(begin + seq_cells_, num_ctx());
      if (s < 0 || begin >= num_ctx()) {
        throw std::invalid_argument("kv cache: sequence " + std::to_string(s) + " has no cells (" +
                                    std::to_string(num_ctx()) + " cells of " +
                                    std::to_string(seq_cells_) + " per sequence)");
      }
      auto it =
          std::find_if(cursors.begin(), cursors.end(), [s](const auto& c) { return c.first == s; });
      if (it == cursors.end()) it = cursors.insert(cursors.end(), {s, begin});
      int64_t c = it->second;
      while (c < end && cells_[static_cast<size_t>(c)].pos >= 0) ++c;
      if (c >= end) {
        throw FullError("kv cache full: sequence " + std::to_string(s) +
                        " has no free cell of its " + std::to_string(seq_cells_));
      }
      cell_of_token_.push_back(static_cast<int32_t>(c));
      it->second = c + 1;
    }
  }
  int64_t last = 0;
  for (size_t c = 0; c < cells_.size(); ++c) {
    if (cells_[c].pos >= 0) last = static_cast<int64_t>(c);
  }
  for (size_t i = 0; i < n; ++i) {
    Cell& cell = cells_[static_cast<size_t>(cell_of_token_[i])];
    cell.pos = positions[i];
    cell.seqs.assign(1, seq_ids[i]);
    last = std::max<int64_t>(last, cell_of_token_[i]);
  }
  n_kv_ = std::min(num_ctx(), (last + 1 + pad_ - 1) / pad_ * pad_);
  n_tokens_ = static_cast<int64_t>(n);

  constexpr float kHidden = -std::numeric_limits<float>::infinity();
  // A larger mask frees the old one first: growing in place would hold both at once, and a long
  // prompt's last mask (n_kv × a whole batch) is the largest buffer of a step (measured: peak RSS
  // was the KV cache plus twice the mask at an 8192-token context; the estimate counts it once).
  const auto mask_size = static_cast<size_t>(n_kv_ * n_tokens_);
  if (mask_size > mask_.capacity()) std::vector<float>().swap(mask_);
  mask_.assign(mask_size, kHidden);
  for (size_t t = 0; t < n; ++t) {
    float* row = mask_.data() + t * static_cast<size_t>(n_kv_);
    for (int64_t c = 0; c < n_kv_; ++c) {
      const Cell& cell = cells_[static_cast<size_t>(c)];
      if (cell.pos >= 0 && (!causal_ || cell.pos <= positions[t]) && cell.has(seq_ids[t]) &&
          in_window(positions[t], cell.pos, window_)) {
        row[c] = 0.0f;
      }
    }
  }
  graph_ = &g;
  const char* suffix = window_ > 0 ? "_swa" : "";
  cells_leaf_ =
      g.leaf(ml::DType::I32, {n_tokens_}, cell_of_token_.data(), std::string("kv_cells") + suffix);
  mask_leaf_ =
      g.leaf(ml::DType::F32, {n_kv_, n_tokens_}, mask_.data(), std::string("kv_mask") + suffix);
}

Causal::Entries Causal::update(int layer, ml::Tensor k, ml::Tensor v) {
  if (slot_[static_cast<size_t>(layer)] < 0) return sliding_->update(layer, k, v);
  assert(graph_ == k.graph() && "start_forward records the batch's inputs first");
  ml::Graph& g = *graph_;
  const size_t es = ml::type_size(dtype_);  // f16/f32: one element per "block"
  auto write = [&](ml::Tensor cur, bool value) {
    const int64_t head_dim = value ? head_dim_v_ : head_dim_k_;
    if (!cur.node().is_contiguous()) cur = ml::cont(cur);
    ml::Tensor rows = ml::reshape(cur, {head_dim * n_head_kv_, n_tokens_});
    ml::Tensor all = ml::set_rows(layer_leaf(g, layer, value), rows, cells_leaf_);
    // [head_dim, n_kv, n_head_kv]: cell rows hold the heads one after another.
    const size_t row_bytes = es * static_cast<size_t>(head_dim * n_head_kv_);
    return ml::view(
        all, {head_dim, n_kv_, n_head_kv_, 1},
        {es, row_bytes, es * static_cast<size_t>(head_dim), row_bytes * static_cast<size_t>(n_kv_)},
        0);
  };
  return {write(k, false), write(v, true), mask_leaf_};
}

void Causal::remove(int32_t seq, int32_t p0, int32_t p1) {
  for (Cell& cell : cells_) {
    if (cell.pos < p0 || (p1 >= 0 && cell.pos >= p1) || !cell.has(seq)) continue;
    std::erase(cell.seqs, seq);
    if (cell.seqs.empty()) cell.pos = -1;
  }
  if (sliding_) sliding_->remove(seq, p0, p1);
}

void Causal::copy_prefix(int32_t src, int32_t dst, int32_t len) {
  for (Cell& cell : cells_) {
    if (cell.pos >= 0 && cell.pos < len && cell.has(src) && !cell.has(dst)) {
      cell.seqs.push_back(dst);
    }
  }
  if (sliding_) sliding_->copy_prefix(src, dst, len);
}

int32_t Causal::next_position(int32_t seq) const {
  int32_t next = 0;
  for (const Cell& cell : cells_) {
    if (cell.pos >= 0 && cell.has(seq)) next = std::max(next, cell.pos + 1);
  }
  return next;
}

int64_t Causal::used_cells() const {
  return std::count_if(cells_.begin(), cells_.end(), [](const Cell& c) { return c.pos >= 0; });
}

size_t Causal::bytes() const {
  size_t n = 0;
  for (const auto& b : keys_) n += b->size();
  for (const auto& b : values_) n += b->size();
  return n;
}

int32_t Causal::shift(ml::Executor& executor, int32_t seq, int32_t num_keep,
                      const ShiftFn& rotate) {
  const int32_t n_past = next_position(seq);
  const int32_t discard = (n_past - num_keep) / 2;
  if (discard <= 0) return 0;
  // The sliding cells move by the same amount: both sets then hold the same positions.
  shift_cells(executor, seq, num_keep, discard, rotate);
  if (sliding_) sliding_->shift_cells(executor, seq, num_keep, discard, rotate);
  return discard;
}

void Causal::shift_cells(ml::Executor& executor, int32_t seq, int32_t num_keep, int32_t discard,
                         const ShiftFn& rotate) {
  std::vector<int32_t> moved;
  for (size_t c = 0; c < cells_.size(); ++c) {
    const Cell& cell = cells_[c];
    if (cell.pos >= num_keep + discard && cell.has(seq)) {
      if (cell.seqs.size() > 1) {
        throw std::logic_error("kv cache: cannot shift sequence " + std::to_string(seq) +
                               ": position " + std::to_string(cell.pos) +
                               " is shared with another sequence");
      }
      moved.push_back(static_cast<int32_t>(c));
    }
  }
  for (Cell& cell : cells_) {
    if (cell.pos < num_keep || cell.pos >= num_keep + discard || !cell.has(seq)) continue;
    std::erase(cell.seqs, seq);
    if (cell.seqs.empty()) cell.pos = -1;
  }
  for (int32_t c : moved) cells_[static_cast<size_t>(c)].pos -= discard;
  if (moved.empty() || keys_.empty()) return;

  // Keys carry their rotation: rotating again by -discard gives the rotation of the new
  // position (RoPE angles are linear in the position). Values carry none.
  ml::Graph g;
  const auto n = static_cast<int64_t>(moved.size());
  std::vector<int32_t> delta(moved.size(), -discard);
  ml::Tensor cells = g.leaf(ml::DType::I32, {n}, moved.data(), "shift_cells");
  ml::Tensor d = g.leaf(ml::DType::I32, {n}, delta.data(), "shift_delta");
  std::vector<ml::Tensor> outs;
  for (int il = 0; il < static_cast<int>(slot_.size()); ++il) {
    if (slot_[static_cast<size_t>(il)] < 0) continue;
    ml::Tensor leaf = layer_leaf(g, il, false);
    ml::Tensor keys = ml::reshape(ml::get_rows(leaf, cells), {head_dim_k_, n_head_kv_, n});
    ml::Tensor rotated = ml::reshape(ml::cont(rotate(keys, d, il)), {head_dim_k_ * n_head_kv_, n});
    outs.push_back(ml::set_rows(leaf, rotated, cells));
  }
  executor.compute(g, outs);
}

}  // namespace corral::kvcache
