// The executor: picks the nodes the outputs need, plans their memory, sets data pointers and
// runs runs of consecutive nodes on the first backend that supports them.
#include <stdexcept>
#include <string>

#include "ml/backend.h"

namespace corral::ml {

Executor::Executor(std::vector<Backend*> backends) : backends_(std::move(backends)) {
  if (backends_.empty()) throw std::invalid_argument("Executor: no backend");
}

void Executor::compute(Graph& g, std::span<const Tensor> outputs) {
  const int n = g.size();
  needed_.assign(n, 0);
  outputs_.clear();
  for (const Tensor& t : outputs) {
    if (t.graph() != &g) throw std::invalid_argument("Executor: output from another graph");
    needed_[t.id()] = 1;
    outputs_.push_back(t.id());
  }
  // Ids are a topological order: walk backwards marking what the needed nodes read.
  for (int id = n - 1; id >= 0; --id) {
    if (!needed_[id]) continue;
    const Node& node = g.node(id);
    for (int s : node.src) {
      if (s >= 0) needed_[s] = 1;
    }
    if (node.view_src >= 0) needed_[node.view_src] = 1;
  }
  order_.clear();
  for (int id = 0; id < n; ++id) {
    if (!needed_[id]) continue;
    const Node& node = g.node(id);
    if (node.kind() == OpKind::kLeaf) {
      if (!node.data && node.nelements() > 0) {
        throw std::invalid_argument("Executor: leaf '" + node.name + "' " + node.shape_string() +
                                    " has no data");
      }
      continue;
    }
    order_.push_back(id);
  }

  const MemoryPlan plan = plan_memory(g, order_, outputs_);
  if (!arena_ || arena_->size() < plan.size) {
    arena_.reset();
    arena_ = backends_.back()->allocate(plan.size);
  }
  char* base = static_cast<char*>(arena_->data());
  for (int id : order_) {
    Node& node = g.node(id);
    if (plan.offset[id] != MemoryPlan::kNoOffset) {
      node.data = base + plan.offset[id];
    } else if (node.view_src >= 0) {
      node.data = static_cast<char*>(g.node(node.view_src).data) + node.view_offset;
    }
  }

  auto pick = [&](const Node& node) -> Backend* {
    for (Backend* b : backends_) {
      if (b->supports(g, node)) return b;
    }
    throw std::invalid_argument(std::string("Executor: no backend supports ") +
                                std::string(op_name(node.kind())) + " " + node.shape_string());
  };
  placement_.clear();
  for (int id : order_) placement_.push_back(pick(g.node(id)));
  for (Backend* b : backends_) b->prepare(g, order_, placement_, outputs_);

  // Consecutive nodes on the same backend run in one call.
  for (size_t start = 0, i = 1; start < order_.size(); ++i) {
    if (i == order_.size() || placement_[i] != placement_[start]) {
      placement_[start]->compute(g, std::span<const int>(order_).subspan(start, i - start));
      start = i;
    }
  }
  for (Backend* b : backends_) b->synchronize();
}

}  // namespace corral::ml
