#include <algorithm>
#include <array>
#include <memory>
#include <new>

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels/kernels.h"

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

class CpuBackend final : public ml::Backend {
 public:
  explicit CpuBackend(int n_threads) : pool_(n_threads) {}

  std::string_view name() const override { return "cpu"; }
  bool supports(const ml::Graph&, const ml::Node& n) const override {
    return n.kind() == OpKind::kView || kTable[static_cast<size_t>(n.kind())].kernel != nullptr;
  }

  void compute(const ml::Graph& g, std::span<const int> nodes) override {
    for (int id : nodes) {
      const ml::Node& n = g.node(id);
      const Entry& e = kTable[static_cast<size_t>(n.kind())];
      if (!e.kernel) continue;
      const int nth = pool_.size();
      const size_t need = e.work ? e.work(g, n, nth) : 0;
      if (need > work_size_) {  // grows to the largest need, then stays
        work_.reset(static_cast<unsigned char*>(::operator new[](need, kWorkAlign)));
        work_size_ = need;
      }
      struct Job {
        const Entry* e;
        const ml::Graph* g;
        const ml::Node* n;
        CpuBackend* self;
        size_t need;
      } job{&e, &g, &n, this, need};
      pool_.run(
          nth,
          [](void* c, int ith, int nth) {
            auto* j = static_cast<Job*>(c);
            KernelContext ctx{ith, nth, j->self->work_.get(), j->need, &j->self->pool_};
            j->e->kernel(ctx, *j->g, *j->n);
          },
          &job);
    }
  }

 private:
  // Scratch is 64-byte aligned (a cache line): kernels keep shared counters and SIMD rows in it.
  static constexpr std::align_val_t kWorkAlign{64};
  struct AlignedDelete {
    void operator()(unsigned char* p) const { ::operator delete[](p, kWorkAlign); }
  };
  ThreadPool pool_;
  std::unique_ptr<unsigned char[], AlignedDelete> work_;
  size_t work_size_ = 0;
};

}  // namespace

std::unique_ptr<ml::Backend> make_backend(CpuOptions options) {
  const int n = options.n_threads > 0 ? options.n_threads : physical_cores();
  return std::make_unique<CpuBackend>(n);
}

}  // namespace corral::backend::cpu
