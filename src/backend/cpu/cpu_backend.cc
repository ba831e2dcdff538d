#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels/kernels.h"
#include "backend/cpu/profile_internal.h"
#include "backend/cpu/simd/matmul_kernels.h"

namespace corral::backend::cpu {
namespace {

using ml::OpKind;

struct Entry {
  Kernel kernel = nullptr;
  WorkSize work = nullptr;
};

constexpr std::array<Entry, static_cast<size_t>(OpKind::kCount)> make_table() {
  std::array<Entry, static_cast<size_t>(OpKind::kCount)> t{};
  auto set = [&t](OpKind k, Kernel f, WorkSize w = nullptr) {
    t[static_cast<size_t>(k)] = Entry{f, w};
  };
  set(OpKind::kCont, cont);
  set(OpKind::kCpy, cpy);
  set(OpKind::kGetRows, get_rows);
  set(OpKind::kMulMat, mul_mat, mul_mat_work_size);
  set(OpKind::kAdd, add);
  set(OpKind::kSub, sub);
  set(OpKind::kMul, mul);
  set(OpKind::kDiv, div);
  set(OpKind::kScale, scale);
  set(OpKind::kRmsNorm, rms_norm);
  set(OpKind::kLayerNorm, layer_norm);
  set(OpKind::kSoftMax, softmax);
  set(OpKind::kRope, rope);
  set(OpKind::kSilu, silu);
  set(OpKind::kGelu, gelu);
  set(OpKind::kGeluQuick, gelu_quick);
  set(OpKind::kSwiGlu, swiglu);
  set(OpKind::kConcat, concat);
  set(OpKind::kSetRows, set_rows);
  set(OpKind::kArgMax, argmax);
  set(OpKind::kSumRows, sum_rows);
  set(OpKind::kMean, mean);
  set(OpKind::kFlashAttn, flash_attn, flash_attn_work_size);
  set(OpKind::kIm2Col, im2col);
  set(OpKind::kConv2D, conv2d, conv2d_work_size);
  return t;
}
constexpr auto kTable = make_table();

// Threads worth waking for a node: an op that touches little memory finishes on one thread
// before another could be woken (a small model's decode step is hundreds of such ops, and on a
// busy machine each hand-off can wait for a scheduler slice).
int threads_for(const ml::Graph& g, const ml::Node& n, int max_threads) {
  if (max_threads == 1) return 1;
  constexpr size_t kMinBytesPerExtraThread = 64 * 1024;
  size_t bytes = n.nbytes();
  for (int s : n.src) {
    if (s >= 0) bytes += g.node(s).nbytes();
  }
  if (n.kind() == OpKind::kMulMat || n.kind() == OpKind::kFlashAttn) {
    // Work grows with both operands: weights (or keys) are read once per output column.
    bytes += g.node(n.src[0]).nbytes() * static_cast<size_t>(n.ne[1] * n.ne[2] * n.ne[3]);
  }
  const size_t useful = 1 + bytes / kMinBytesPerExtraThread;
  return static_cast<int>(std::min<size_t>(useful, static_cast<size_t>(max_threads)));
}

// Scratch and packed weights are 64-byte aligned (a cache line): kernels keep shared counters
// and SIMD rows in them.
constexpr std::align_val_t kAlign{64};
struct AlignedDelete {
  void operator()(unsigned char* p) const { ::operator delete[](p, kAlign); }
};
using AlignedBytes = std::unique_ptr<unsigned char[], AlignedDelete>;
AlignedBytes aligned_bytes(size_t n) {
  return AlignedBytes(
      static_cast<unsigned char*>(::operator new[](std::max<size_t>(n, 1), kAlign)));
}

// Packed weights are read start to end once per token: on 2 MiB pages (transparent huge pages,
// where the system offers them on request) the hardware prefetchers follow the stream without
// stopping at every 4 KiB page boundary, and the TLB covers the whole matrix.
constexpr size_t kHugePage = size_t{2} << 20;
struct HugeDelete {
  size_t bytes = 0;
  void operator()(unsigned char* p) const { munmap(p, bytes); }
};
using HugeBytes = std::unique_ptr<unsigned char[], HugeDelete>;
HugeBytes huge_bytes(size_t n) {
  if (n < kHugePage) {
    // A small matrix (a small model's) gains little from a huge page and would waste most of it.
    const size_t bytes = (std::max<size_t>(n, 1) + 4095) / 4096 * 4096;
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    return HugeBytes(static_cast<unsigned char*>(p), HugeDelete{bytes});
  }
  const size_t bytes = (n + kHugePage - 1) / kHugePage * kHugePage;
  // Over-allocate by a page to align the start, then give back the ends.
  void* raw =
      mmap(nullptr, bytes + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  if (const size_t tail = start + bytes + kHugePage - (aligned + bytes)) {
    munmap(reinterpret_cast<void*>(aligned + bytes), tail);
  }
  auto* p = reinterpret_cast<unsigned char*>(aligned);
  madvise(p, bytes, MADV_HUGEPAGE);  // advice only: without THP the pages stay small
  return HugeBytes(p, HugeDelete{bytes});
}

// Weights repacked into panels of 8 rows (simd::PanelKernels), for the weights they came from.
struct Packed {
  HugeBytes data;
  ml::DType dtype;
  int64_t k = 0, m = 0;
};

class CpuBackend final : public ml::Backend {
 public:
  CpuBackend(int n_threads, std::vector<std::span<const std::byte>> constant, simd::Isa isa)
      : pool_(n_threads), constant_(std::move(constant)), isa_(isa) {}

  std::string_view name() const override { return "cpu"; }
  bool supports(const ml::Graph&, const ml::Node& n) const override {
    return n.kind() == OpKind::kView || kTable[static_cast<size_t>(n.kind())].kernel != nullptr;
  }

  // Packs, once, the constant weights of the matrix products this backend is about to run.
  void prepare(const ml::Graph& g, std::span<const int> order, std::span<Backend* const> placement,
               std::span<const int>) override {
    if (constant_.empty()) return;
    for (size_t i = 0; i < order.size(); ++i) {
      const ml::Node& n = g.node(order[i]);
      if (placement[i] != this || n.kind() != OpKind::kMulMat) continue;
      const ml::Node& w = g.node(n.src[0]);
      // Already packed (every step after the first): one lookup, no re-check.
      if (packed_.contains(w.data) || !packable(w)) continue;
      pack(w);
    }
  }

  void compute(const ml::Graph& g, std::span<const int> nodes) override {
    MulMatSibling siblings[kMaxMulMatSiblings];
    for (size_t idx = 0; idx < nodes.size(); ++idx) {
      const ml::Node& n = g.node(nodes[idx]);
      const Entry& e = kTable[static_cast<size_t>(n.kind())];
      if (!e.kernel) continue;
      const void* packed = nullptr;
      int n_siblings = 0;
      int nth = threads_for(g, n, pool_.size());
      if (n.kind() == OpKind::kMulMat && !packed_.empty()) {
        packed = find_packed(g.node(n.src[0]));
        if (packed) n_siblings = gather_siblings(g, nodes, idx, siblings, nth);
      }
      const size_t need = e.work ? e.work(g, n, nth, isa_) : 0;
      if (need > work_size_) {  // grows to the largest need, then stays
        work_ = aligned_bytes(need);
        work_size_ = need;
      }
      struct Job {
        const Entry* e;
        const ml::Graph* g;
        const ml::Node* n;
        CpuBackend* self;
        size_t need;
        const void* packed;
        const MulMatSibling* siblings;
        int n_siblings;
      } job{&e, &g, &n, this, need, packed, siblings, n_siblings};
      const bool profiling = g_profiling.load(std::memory_order_relaxed);
      const auto t0 =
          profiling ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      pool_.run(
          nth,
          [](void* c, int ith, int nth) {
            auto* j = static_cast<Job*>(c);
            KernelContext ctx{
                ith,       nth,         j->self->work_.get(), j->need,      &j->self->pool_,
                j->packed, j->siblings, j->n_siblings,        j->self->isa_};
            j->e->kernel(ctx, *j->g, *j->n);
          },
          &job);
      if (profiling) record(g, n, siblings, n_siblings, std::chrono::steady_clock::now() - t0);
    }
  }

 private:
  // The mul_mat nodes after nodes[idx] (views between them aside) that read the same
  // activations with packed weights taking the same activation format: computed in its pass.
  // Moves idx to the last one taken; raises nth to what the largest needs. Safe because those
  // nodes read only their weights and the activations, which are computed by then, and the
  // memory plan gives every one of them a block of its own (all are alive at once: none is
  // read before the last is computed, and nothing is freed between them).
  int gather_siblings(const ml::Graph& g, std::span<const int> nodes, size_t& idx,
                      MulMatSibling* out, int& nth) const {
    const ml::Node& n = g.node(nodes[idx]);
    const ml::Node& x = g.node(n.src[1]);
    const simd::PanelKernels* panel = simd::matmul_kernels(g.node(n.src[0]).dtype, isa_).panel;
    if (x.ne[2] != 1 || x.ne[3] != 1) return 0;
    int count = 0;
    size_t last = idx;
    for (size_t j = idx + 1; j < nodes.size() && count < kMaxMulMatSiblings; ++j) {
      const ml::Node& m = g.node(nodes[j]);
      if (m.kind() == OpKind::kView) continue;
      if (m.kind() != OpKind::kMulMat || m.src[1] != n.src[1]) break;
      const ml::Node& w = g.node(m.src[0]);
      const simd::PanelKernels* p = simd::matmul_kernels(w.dtype, isa_).panel;
      if (w.ne[0] != g.node(n.src[0]).ne[0] || !p || p->from_f32 != panel->from_f32 ||
          p->x_row_bytes != panel->x_row_bytes) {
        break;
      }
      const void* packed = find_packed(w);
      if (!packed) break;
      out[count++] = {&m, packed};
      nth = std::max(nth, threads_for(g, m, pool_.size()));
      last = j;
    }
    idx = last;
    return count;
  }

  // Adds a pass to the profile; the products of a shared pass share its time by their bytes.
  static void record(const ml::Graph& g, const ml::Node& n, const MulMatSibling* siblings,
                     int n_siblings, std::chrono::nanoseconds t) {
    if (n.kind() != OpKind::kMulMat) {
      uint64_t bytes = n.nbytes();
      for (int s : n.src) {
        if (s >= 0) bytes += g.node(s).nbytes();
      }
      profile_add(ml::op_name(n.kind()), static_cast<uint64_t>(t.count()), bytes);
      return;
    }
    uint64_t all = g.node(n.src[0]).nbytes();
    for (int i = 0; i < n_siblings; ++i) all += g.node(siblings[i].n->src[0]).nbytes();
    for (int i = -1; i < n_siblings; ++i) {
      const ml::Node& w = g.node((i < 0 ? n : *siblings[i].n).src[0]);
      const std::string name = "mul_mat " + std::string(ml::dtype_name(w.dtype)) + " " +
                               std::to_string(w.ne[0]) + "x" + std::to_string(w.ne[1]);
      const double share =
          static_cast<double>(w.nbytes()) / static_cast<double>(std::max<uint64_t>(all, 1));
      profile_add(name, static_cast<uint64_t>(static_cast<double>(t.count()) * share), w.nbytes());
    }
  }

  // 2-D weights with contiguous rows, of a dtype with panel kernels, inside a constant range.
  bool packable(const ml::Node& w) const {
    if (!simd::matmul_kernels(w.dtype, isa_).panel || w.ne[2] != 1 || w.ne[3] != 1) return false;
    if (!w.data || w.nb[1] != ml::row_size(w.dtype, w.ne[0])) return false;
    const auto p = reinterpret_cast<uintptr_t>(w.data);
    const size_t bytes = w.nbytes();
    for (const auto& r : constant_) {
      const auto begin = reinterpret_cast<uintptr_t>(r.data());
      if (p >= begin && bytes <= r.size() && p - begin <= r.size() - bytes) return true;
    }
    return false;
  }

  void pack(const ml::Node& w) {
    const simd::PanelKernels& panel = *simd::matmul_kernels(w.dtype, isa_).panel;
    const int64_t k = w.ne[0], m = w.ne[1];
    const int64_t n_panels = (m + simd::kPanelRows - 1) / simd::kPanelRows;
    const size_t pbytes = panel.panel_bytes(k);
    Packed p{huge_bytes(pbytes * static_cast<size_t>(n_panels)), w.dtype, k, m};
    struct Job {
      const simd::PanelKernels* panel;
      const unsigned char* src;
      size_t ldw, pbytes;
      int64_t k, m, n_panels;
      unsigned char* dst;
    } job{&panel,      static_cast<const unsigned char*>(w.data), w.nb[1], pbytes, k, m, n_panels,
          p.data.get()};
    pool_.run(
        pool_.size(),
        [](void* c, int ith, int nth) {
          const auto* j = static_cast<const Job*>(c);
          for (int64_t i = ith; i < j->n_panels; i += nth) {
            const int64_t r0 = i * simd::kPanelRows;
            const int nr = static_cast<int>(std::min<int64_t>(simd::kPanelRows, j->m - r0));
            j->panel->pack(j->k, j->src + r0 * j->ldw, j->ldw, nr,
                           j->dst + static_cast<size_t>(i) * j->pbytes);
          }
        },
        &job);
    packed_.emplace(w.data, std::move(p));
  }

  const void* find_packed(const ml::Node& w) const {
    const auto it = packed_.find(w.data);
    if (it == packed_.end()) return nullptr;
    const Packed& p = it->second;
    const bool same = p.dtype == w.dtype && p.k == w.ne[0] && p.m == w.ne[1] && w.ne[2] == 1 &&
                      w.ne[3] == 1 && w.nb[1] == ml::row_size(w.dtype, w.ne[0]);
    return same ? p.data.get() : nullptr;
  }

  ThreadPool pool_;
  AlignedBytes work_;
  size_t work_size_ = 0;
  std::vector<std::span<const std::byte>> constant_;
  std::unordered_map<const void*, Packed> packed_;  // by the address of the original weights
  simd::Isa isa_;
};

}  // namespace

std::unique_ptr<ml::Backend> make_backend(CpuOptions options) {
  if (!simd::isa_supported(options.isa)) {
    throw std::invalid_argument(std::string("cpu backend: this processor does not run the ") +
                                simd::isa_name(options.isa) + " kernels (it runs " +
                                simd::isa_name(simd::best_isa()) + " and narrower)");
  }
  const int n = options.n_threads > 0 ? options.n_threads : physical_cores();
  return std::make_unique<CpuBackend>(n, std::move(options.constant), options.isa);
}

}  // namespace corral::backend::cpu
