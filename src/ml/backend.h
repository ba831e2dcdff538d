// The Backend interface and the Executor that plans memory and runs a graph on backends.
// A backend owns kernels for the ops it supports and the memory they run in; the executor runs
// each node on the first backend whose supports() is true (the last one is the fallback).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "ml/graph.h"

namespace corral::ml {

class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual void* data() = 0;
  virtual size_t size() const = 0;
};

// A 64-byte aligned host allocation.
class HostBuffer final : public Buffer {
 public:
  explicit HostBuffer(size_t bytes);
  ~HostBuffer() override;
  void* data() override { return data_; }
  size_t size() const override { return size_; }

 private:
  void* data_ = nullptr;
  size_t size_ = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;
  // Whether this backend can run the node (op, dtypes, strides).
  virtual bool supports(const Graph& g, const Node& n) const = 0;
  // Memory the backend's kernels read and write.
  virtual std::unique_ptr<Buffer> allocate(size_t bytes) {
    return std::make_unique<HostBuffer>(bytes);
  }
  // Called by the executor once per graph computation, before any node runs: every node it will
  // compute (ascending ids), the backend each runs on (placement[i] runs order[i]) and the
  // outputs. A backend with memory of its own (CUDA) plans it here and learns what to copy to
  // the host; host backends ignore it.
  virtual void prepare(const Graph& g, std::span<const int> order,
                       std::span<Backend* const> placement, std::span<const int> outputs) {}
  // Runs the nodes, in order; every data pointer they use is set.
  virtual void compute(const Graph& g, std::span<const int> nodes) = 0;
  virtual void synchronize() {}
};

// Where each planned node lives in the arena: offsets by node id (kNoOffset for leaves, views
// and nodes not computed) and the arena size. Buffers are reused once their last reader ran.
struct MemoryPlan {
  static constexpr size_t kNoOffset = static_cast<size_t>(-1);
  std::vector<size_t> offset;
  size_t size = 0;
};
inline constexpr size_t kTensorAlignment = 64;
// `order`: the nodes to compute, ascending ids. Outputs stay live to the end.
MemoryPlan plan_memory(const Graph& g, std::span<const int> order, std::span<const int> outputs);

class Executor {
 public:
  // Backends in order of preference; the last must support every op (the CPU backend).
  explicit Executor(std::vector<Backend*> backends);
  ~Executor();
  // Computes what the outputs need. Their data stay valid until the next compute.
  void compute(Graph& g, std::span<const Tensor> outputs);
  void compute(Graph& g, std::initializer_list<Tensor> outputs) {
    compute(g, std::span<const Tensor>(outputs.begin(), outputs.size()));
  }
  size_t arena_bytes() const { return arena_ ? arena_->size() : 0; }
  // Computes that planned their graph from scratch (the rest reused a plan: a decode step's
  // graph has the shape of the step before it).
  size_t plans_made() const { return plans_made_; }

 private:
  struct Plan;
  Plan& plan_for(const Graph& g);

  std::vector<Backend*> backends_;
  std::unique_ptr<Buffer> arena_;
  std::vector<std::unique_ptr<Plan>> plans_;  // most recently used first
  size_t plans_made_ = 0;
  std::vector<uint64_t> key_;
  std::vector<Backend*> placement_;  // the backend of each node of the plan's order
  std::vector<int> outputs_;
  std::vector<char> needed_;
};

}  // namespace corral::ml
