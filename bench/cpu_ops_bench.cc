// The CPU backend's non-mul_mat kernels at the sizes a 7B-class model gives them (n_embd 4096,
// FFN 11008, 32 heads of 128, 8 KV heads), one graph node per benchmark run through the
// executor, with 1 and 2 threads. Bytes/s counts what the op must read and write once; compare
// the memory-bound ones with `build/stream`. Vec/... times the row primitives alone, scalar
// against AVX2, on rows that stay in L1.
//   build/cpu_ops_bench [--benchmark_filter=FlashAttn]
#include <benchmark/benchmark.h>

#include <deque>
#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels/vec.h"
#include "ml/backend.h"
#include "ml/fp16.h"
#include "ml/graph.h"

namespace corral {
namespace {

using ml::DType;
using ml::Shape;
using ml::Tensor;

// Leaves filled with uniform values in [-1, 1) (positions for I32).
class Inputs {
 public:
  Tensor leaf(ml::Graph& g, DType t, const Shape& s) {
    const int64_t n = s[0] * s[1] * s[2] * s[3];
    bufs_.emplace_back(static_cast<size_t>(n) * ml::type_size(t));
    std::uniform_real_distribution<float> d(-1.0f, 1.0f);
    char* p = bufs_.back().data();
    for (int64_t i = 0; i < n; ++i) {
      if (t == DType::F32) {
        reinterpret_cast<float*>(p)[i] = d(rng_);
      } else if (t == DType::F16) {
        reinterpret_cast<uint16_t*>(p)[i] = ml::fp32_to_fp16(d(rng_));
      } else {
        reinterpret_cast<int32_t*>(p)[i] = static_cast<int32_t>(i);
      }
    }
    return g.leaf(t, s, p);
  }

 private:
  std::mt19937 rng_{1};
  std::deque<std::vector<char>> bufs_;
};

void run_op(benchmark::State& state, const std::function<Tensor(ml::Graph&, Inputs&)>& build,
            double bytes) {
  ml::Graph g;
  Inputs in;
  Tensor out = build(g, in);
  auto be = backend::cpu::make_backend({.n_threads = static_cast<int>(state.range(0))});
  ml::Executor ex({be.get()});
  ex.compute(g, {out});
  for (auto _ : state) ex.compute(g, {out});
  state.SetBytesProcessed(static_cast<int64_t>(bytes * static_cast<double>(state.iterations())));
}

void RmsNorm(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::rms_norm(in.leaf(g, DType::F32, {4096, 32, 1, 1}), 1e-5f);
      },
      2.0 * 4096 * 32 * 4);
}
void SoftmaxF16Mask(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::softmax(in.leaf(g, DType::F32, {4096, 256, 1, 1}),
                           in.leaf(g, DType::F16, {4096, 256, 1, 1}), 0.088f);
      },
      2.5 * 4096 * 256 * 4);
}
void Silu(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::silu(in.leaf(g, DType::F32, {11008, 32, 1, 1}));
      },
      2.0 * 11008 * 32 * 4);
}
void SwiGlu(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::swiglu(in.leaf(g, DType::F32, {11008, 32, 1, 1}),
                          in.leaf(g, DType::F32, {11008, 32, 1, 1}));
      },
      3.0 * 11008 * 32 * 4);
}
void GeluErf(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::gelu(in.leaf(g, DType::F32, {11008, 32, 1, 1}), ml::op::GeluForm::kErf);
      },
      2.0 * 11008 * 32 * 4);
}
void AddBroadcast(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::add(in.leaf(g, DType::F32, {4096, 64, 1, 1}),
                       in.leaf(g, DType::F32, {4096, 1, 1, 1}));
      },
      2.0 * 4096 * 64 * 4);
}
void RopeNeox(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        ml::op::Rope p;
        p.mode = ml::op::RopeMode::kNeox;
        p.n_dims = 128;
        return ml::rope(in.leaf(g, DType::F32, {128, 32, 64, 1}),
                        in.leaf(g, DType::I32, {64, 1, 1, 1}), {}, p);
      },
      2.0 * 128 * 32 * 64 * 4);
}
// Decode against a 4096-token f16 cache: 16 MiB of K and V read once per call.
void FlashAttnDecode(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::flash_attn(in.leaf(g, DType::F32, {128, 1, 32, 1}),
                              in.leaf(g, DType::F16, {128, 4096, 8, 1}),
                              in.leaf(g, DType::F16, {128, 4096, 8, 1}), {}, 0.088f, false);
      },
      2.0 * 128 * 4096 * 8 * 2);
}
void FlashAttnPrefillCausal(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::flash_attn(in.leaf(g, DType::F32, {128, 512, 32, 1}),
                              in.leaf(g, DType::F16, {128, 512, 8, 1}),
                              in.leaf(g, DType::F16, {128, 512, 8, 1}), {}, 0.088f, true);
      },
      0);
}
void CastQ8_0(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::cast(in.leaf(g, DType::F32, {4096, 256, 1, 1}), DType::Q8_0);
      },
      (4.0 + 34.0 / 32) * 4096 * 256);
}
void Conv2dPatch14(benchmark::State& s) {
  run_op(
      s,
      [](ml::Graph& g, Inputs& in) {
        return ml::conv2d(in.leaf(g, DType::F16, {14, 14, 3, 1024}),
                          in.leaf(g, DType::F32, {224, 224, 3, 1}),
                          ml::op::Conv2D{14, 14, 0, 0, 1, 1});
      },
      0);
}

BENCHMARK(RmsNorm)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(SoftmaxF16Mask)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(Silu)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(SwiGlu)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(GeluErf)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(AddBroadcast)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(RopeNeox)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(FlashAttnDecode)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(FlashAttnPrefillCausal)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(CastQ8_0)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(Conv2dPatch14)->Arg(1)->Arg(2)->UseRealTime();

// Row primitives alone: arg 0 scalar, 1 AVX2.
const backend::cpu::vec::Ops* pick(benchmark::State& s) {
  const backend::cpu::vec::Ops* o =
      s.range(0) ? backend::cpu::vec::avx2_ops() : &backend::cpu::vec::scalar_ops();
  if (!o) s.SkipWithError("no AVX2");
  return o;
}
void VecExpSum(benchmark::State& s) {
  const auto* o = pick(s);
  if (!o) return;
  std::vector<float> x(4096, 0.3f), y(4096);
  for (auto _ : s) benchmark::DoNotOptimize(o->exp_sum(x.data(), y.data(), 4096, 1.0f));
  s.SetItemsProcessed(s.iterations() * 4096);
}
void VecDotRowsF16(benchmark::State& s) {
  const auto* o = pick(s);
  if (!o) return;
  std::vector<uint16_t> k(128 * 128, ml::fp32_to_fp16(0.5f));
  std::vector<float> q(128, 0.25f), out(128);
  for (auto _ : s) {
    o->dot_rows_f16(k.data(), 256, 128, q.data(), 128, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  s.SetItemsProcessed(s.iterations() * 128);  // rows of 128
}
void VecAccRowsF16(benchmark::State& s) {
  const auto* o = pick(s);
  if (!o) return;
  std::vector<uint16_t> v(128 * 128, ml::fp32_to_fp16(0.5f));
  std::vector<float> w(128, 0.01f), acc(128);
  for (auto _ : s) {
    o->acc_rows_f16(v.data(), 256, 128, w.data(), 128, acc.data());
    benchmark::DoNotOptimize(acc.data());
  }
  s.SetItemsProcessed(s.iterations() * 128);
}
BENCHMARK(VecExpSum)->Arg(0)->Arg(1);
BENCHMARK(VecDotRowsF16)->Arg(0)->Arg(1);
BENCHMARK(VecAccRowsF16)->Arg(0)->Arg(1);

}  // namespace
}  // namespace corral

BENCHMARK_MAIN();
