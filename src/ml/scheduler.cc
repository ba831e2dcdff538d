// The executor: picks the nodes the outputs need, plans their memory, sets data pointers and
// runs runs of consecutive nodes on the first backend that supports them. A decode step records
// a graph of the same shape as the step before it, so the order and the memory plan are kept,
// keyed by that shape, and reused: a repeated step only compares keys and sets pointers.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "ml/backend.h"

namespace corral::ml {
namespace {

// Plans kept: decode and prefill steps (and a few batch sizes) alternate.
constexpr size_t kMaxPlans = 8;

bool owns_memory(const Node& n) { return n.kind() != OpKind::kLeaf && n.view_src < 0; }

uint64_t pack(int lo, int hi) {
  return static_cast<uint32_t>(lo) | static_cast<uint64_t>(static_cast<uint32_t>(hi)) << 32;
}

// What the order and the memory plan depend on, four words a node: op kind and dtype, inputs,
// storage root, and the bytes of nodes that own memory. Shapes of views and leaves are left out
// (a view of the KV cache grows every step without changing the plan); their data pointers are
// set on every compute.
void make_key(const Graph& g, std::span<const int> outputs, std::vector<uint64_t>& key) {
  const int n = g.size();
  key.resize(4 * static_cast<size_t>(n) + 1 + outputs.size());
  uint64_t* k = key.data();
  for (const Node& node : g.nodes()) {
    const bool owns = owns_memory(node);
    k[0] = pack(static_cast<int>(node.kind()) | static_cast<int>(node.dtype) << 8, node.view_src);
    k[1] = pack(node.src[0], node.src[1]);
    k[2] = pack(node.src[2], node.src[3]);
    k[3] = owns ? node.nbytes() : 0;
    k += 4;
  }
  *k++ = outputs.size();
  for (int id : outputs) *k++ = static_cast<uint64_t>(id);
}

}  // namespace

struct Executor::Plan {
  std::vector<uint64_t> key;
  std::vector<int> order;   // nodes to compute, ascending
  std::vector<int> leaves;  // leaves the outputs read (their data must be set)
  MemoryPlan memory;
};

Executor::Executor(std::vector<Backend*> backends) : backends_(std::move(backends)) {
  if (backends_.empty()) throw std::invalid_argument("Executor: no backend");
}

Executor::~Executor() = default;

Executor::Plan& Executor::plan_for(const Graph& g) {
  make_key(g, outputs_, key_);
  for (size_t i = 0; i < plans_.size(); ++i) {
    const std::vector<uint64_t>& k = plans_[i]->key;
    if (k.size() == key_.size() &&
        std::memcmp(k.data(), key_.data(), k.size() * sizeof(uint64_t)) == 0) {
      std::rotate(plans_.begin(), plans_.begin() + static_cast<std::ptrdiff_t>(i),
                  plans_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      return *plans_.front();
    }
  }

  // A new shape: the least recently used plan's vectors are reused for it.
  std::unique_ptr<Plan> plan;
  if (plans_.size() == kMaxPlans) {
    plan = std::move(plans_.back());
    plans_.pop_back();
  } else {
    plan = std::make_unique<Plan>();
  }
  ++plans_made_;
  const int n = g.size();
  needed_.assign(n, 0);
  for (int id : outputs_) needed_[id] = 1;
  // Ids are a topological order: walk backwards marking what the needed nodes read.
  for (int id = n - 1; id >= 0; --id) {
    if (!needed_[id]) continue;
    const Node& node = g.node(id);
    for (int s : node.src) {
      if (s >= 0) needed_[s] = 1;
    }
    if (node.view_src >= 0) needed_[node.view_src] = 1;
  }
  plan->order.clear();
  plan->leaves.clear();
  for (int id = 0; id < n; ++id) {
    if (!needed_[id]) continue;
    (g.node(id).kind() == OpKind::kLeaf ? plan->leaves : plan->order).push_back(id);
  }
  plan->memory = plan_memory(g, plan->order, outputs_);
  plan->key.swap(key_);
  plans_.insert(plans_.begin(), std::move(plan));
  return *plans_.front();
}

void Executor::compute(Graph& g, std::span<const Tensor> outputs) {
  outputs_.clear();
  for (const Tensor& t : outputs) {
    if (t.graph() != &g) throw std::invalid_argument("Executor: output from another graph");
    outputs_.push_back(t.id());
  }
  const Plan& plan = plan_for(g);
  for (int id : plan.leaves) {
    const Node& node = g.node(id);
    if (!node.data && node.nelements() > 0) {
      throw std::invalid_argument("Executor: leaf '" + node.name + "' " + node.shape_string() +
                                  " has no data");
    }
  }

  if (!arena_ || arena_->size() < plan.memory.size) {
    arena_.reset();
    arena_ = backends_.back()->allocate(plan.memory.size);
  }
  char* base = static_cast<char*>(arena_->data());
  for (int id : plan.order) {
    Node& node = g.node(id);
    const size_t offset = plan.memory.offset[id];
    if (offset != MemoryPlan::kNoOffset) {
      node.data = base + offset;
    } else if (node.view_src >= 0) {
      node.data = static_cast<char*>(g.node(node.view_src).data) + node.view_offset;
    }
  }

  const std::span<const int> order(plan.order);
  auto pick = [&](const Node& node) -> Backend* {
    for (Backend* b : backends_) {
      if (b->supports(g, node)) return b;
    }
    throw std::invalid_argument(std::string("Executor: no backend supports ") +
                                std::string(op_name(node.kind())) + " " + node.shape_string());
  };
  placement_.clear();
  for (int id : order) placement_.push_back(pick(g.node(id)));
  for (Backend* b : backends_) b->prepare(g, order, placement_, outputs_);

  // Consecutive nodes on the same backend run in one call.
  for (size_t start = 0, i = 1; start < order.size(); ++i) {
    if (i == order.size() || placement_[i] != placement_[start]) {
      placement_[start]->compute(g, order.subspan(start, i - start));
      start = i;
    }
  }
  for (Backend* b : backends_) b->synchronize();
}

}  // namespace corral::ml
