// Liveness-based memory planning: every computed node that owns memory gets an offset in one
// arena; a node's block returns to the free list once the last node that reads it (directly or
// through a view) has run, so later nodes reuse it.
#include <algorithm>
#include <cstdlib>
#include <map>
#include <new>

#include "ml/backend.h"

namespace corral::ml {
namespace {

size_t align_up(size_t n) {
  return (n + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
}

// Best-fit allocator over offsets, with neighbouring free blocks merged.
class FreeList {
 public:
  size_t allocate(size_t bytes) {
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second >= bytes && (best == free_.end() || it->second < best->second)) best = it;
    }
    if (best == free_.end()) {
      // Grow the arena, merging with a free block that ends at the top.
      size_t off = top_;
      if (!free_.empty()) {
        auto last = std::prev(free_.end());
        if (last->first + last->second == top_) {
          off = last->first;
          free_.erase(last);
        }
      }
      top_ = off + bytes;
      return off;
    }
    const size_t off = best->first;
    const size_t rest = best->second - bytes;
    free_.erase(best);
    if (rest) free_[off + bytes] = rest;
    return off;
  }
  void release(size_t off, size_t bytes) {
    auto [it, inserted] = free_.emplace(off, bytes);
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }
  size_t top() const { return top_; }

 private:
  std::map<size_t, size_t> free_;  // offset -> size
  size_t top_ = 0;
};

bool owns_memory(const Node& n) { return n.kind() != OpKind::kLeaf && n.view_src < 0; }

}  // namespace

MemoryPlan plan_memory(const Graph& g, std::span<const int> order, std::span<const int> outputs) {
  const int n = g.size();
  MemoryPlan plan;
  plan.offset.assign(n, MemoryPlan::kNoOffset);
  constexpr int kForever = 1 << 30;
  std::vector<int> last_use(n, -1);
  for (int id : order) {
    const Node& node = g.node(id);
    for (int s : node.src) {
      if (s >= 0) last_use[g.storage_root(s)] = std::max(last_use[g.storage_root(s)], id);
    }
    const int root = g.storage_root(id);
    last_use[root] = std::max(last_use[root], id);
  }
  for (int id : outputs) last_use[g.storage_root(id)] = kForever;

  // Blocks to free after each step.
  std::vector<std::vector<int>> frees(n);
  for (int id : order) {
    if (owns_memory(g.node(id)) && last_use[id] != kForever) frees[last_use[id]].push_back(id);
  }
  FreeList list;
  for (int id : order) {
    const Node& node = g.node(id);
    if (owns_memory(node))
      plan.offset[id] = list.allocate(align_up(std::max<size_t>(node.nbytes(), 1)));
    for (int dead : frees[id])
      list.release(plan.offset[dead], align_up(std::max<size_t>(g.node(dead).nbytes(), 1)));
  }
  plan.size = list.top();
  return plan;
}

HostBuffer::HostBuffer(size_t bytes) : size_(bytes) {
  const size_t rounded = std::max<size_t>(align_up(bytes), kTensorAlignment);
  data_ = std::aligned_alloc(kTensorAlignment, rounded);
  if (!data_) throw std::bad_alloc();
}

HostBuffer::~HostBuffer() { std::free(data_); }

}  // namespace corral::ml
