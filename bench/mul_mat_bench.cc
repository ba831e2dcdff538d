// mul_mat on the CPU backend: matrix-vector (decode, n = 1) and matrix-matrix (prefill) for the
// weight shapes of a small model's projections (k = 2048, m = 2048 or 8192), reporting weight
// bytes read per second and GFLOP/s. Matrix-vector is memory-bound: compare its GB/s with
// `build/stream` (STREAM triad) on the same machine. Weights rotate over enough copies to
// exceed the last-level cache, so the figures are DRAM figures, not L3 ones.
// Gemm/... runs one thread's kernel alone on 256 weight rows that stay in L2: the compute
// ceiling of a kernel, which must exceed (DRAM bandwidth / threads) for matrix-vector to be
// memory-bound.
//   build/mul_mat_bench [--benchmark_filter=Q4_0] ; CORRAL_THREADS=n overrides the thread count
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "backend/cpu/cpu.h"
#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/backend.h"
#include "ml/fp16.h"
#include "ml/graph.h"

namespace corral {
namespace {

using ml::DType;

constexpr size_t kColdBytes = 128u << 20;  // weights touched per rotation: 4x the 32 MiB L3

// Weight bytes with valid content: random quants, modest half-precision scales (every block
// format keeps its scales in halves at offsets listed here; f32/f16/bf16 get small values).
void fill_weights(DType t, unsigned char* p, size_t bytes, uint32_t seed) {
  std::mt19937 rng(seed);
  for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>(rng());
  const uint16_t h = ml::fp32_to_fp16(0.01f);
  const size_t bs = ml::type_size(t);
  auto halves = [&](std::initializer_list<size_t> offs) {
    for (size_t b = 0; b + bs <= bytes; b += bs) {
      for (size_t o : offs) std::memcpy(p + b + o, &h, 2);
    }
  };
  switch (t) {
    case DType::F32:
      for (size_t i = 0; i + 4 <= bytes; i += 4) {
        const float f = 0.01f * static_cast<float>(static_cast<int8_t>(p[i]));
        std::memcpy(p + i, &f, 4);
      }
      break;
    case DType::F16:
    case DType::BF16:
      for (size_t i = 0; i + 2 <= bytes; i += 2) {
        const float f = 0.01f * static_cast<float>(static_cast<int8_t>(p[i]));
        const uint16_t v = t == DType::F16 ? ml::fp32_to_fp16(f) : ml::fp32_to_bf16(f);
        std::memcpy(p + i, &v, 2);
      }
      break;
    case DType::Q4_0:
    case DType::Q8_0:
      halves({0});
      break;
    case DType::Q4_K:
    case DType::Q5_K:
      halves({0, 2});
      break;
    case DType::Q6_K:
      halves({208});
      break;
    default:
      break;
  }
}

struct Aligned {
  void operator()(unsigned char* p) const { ::operator delete[](p, std::align_val_t(64)); }
};

void BM_MulMat(benchmark::State& state, DType t, int64_t m, int64_t n) {
  const int64_t k = 2048;
  const size_t wbytes = ml::row_size(t, k) * m;
  const size_t copies = std::max<size_t>(1, std::min<size_t>(64, kColdBytes / wbytes + 1));
  std::vector<std::unique_ptr<unsigned char[], Aligned>> weights;
  for (size_t c = 0; c < copies; ++c) {
    weights.emplace_back(
        static_cast<unsigned char*>(::operator new[](wbytes, std::align_val_t(64))));
    fill_weights(t, weights.back().get(), wbytes, static_cast<uint32_t>(c + 1));
  }
  std::vector<float> x(k * n);
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  for (float& v : x) v = dist(rng);

  const char* env = std::getenv("CORRAL_THREADS");
  auto cpu = backend::cpu::make_backend({.n_threads = env ? std::atoi(env) : 0});
  ml::Graph g;
  ml::Tensor w = g.leaf(t, {k, m}, weights[0].get());
  ml::Tensor xt = g.leaf(DType::F32, {k, n}, x.data());
  ml::Tensor y = ml::mul_mat(w, xt);
  ml::Executor ex({cpu.get()});
  ex.compute(g, {y});

  size_t i = 0;
  for (auto _ : state) {
    w.node().data = weights[i++ % copies].get();
    ex.compute(g, {y});
    benchmark::DoNotOptimize(y.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(wbytes) * iters / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * k * m * n * iters / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(backend::cpu::simd::isa_name(backend::cpu::simd::best_isa())));
}

void BM_Gemm(benchmark::State& state, DType t, int64_t n) {
  namespace simd = backend::cpu::simd;
  const int64_t k = 2048, m = 256;
  const simd::MatMulKernels& kern = simd::matmul_kernels(t);
  const size_t wrow = ml::row_size(t, k);
  std::vector<unsigned char> w(wrow * m);
  fill_weights(t, w.data(), w.size(), 1);
  std::vector<float> x(k * n);
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  for (float& v : x) v = dist(rng);
  const bool f32 = kern.vec_type == DType::F32;
  const size_t xrow = f32 ? k * sizeof(float) : ml::row_size(kern.vec_type, k);
  std::vector<unsigned char> xq(xrow * n);
  for (int64_t c = 0; c < n; ++c) {
    if (f32) {
      std::memcpy(xq.data() + c * xrow, x.data() + c * k, xrow);
    } else {
      kern.from_f32(x.data() + c * k, xq.data() + c * xrow, k);
    }
  }
  std::vector<float> out(m * n);
  for (auto _ : state) {
    kern.gemm(k, w.data(), wrow, xq.data(), xrow, out.data(), m, static_cast<int>(m),
              static_cast<int>(n));
    benchmark::DoNotOptimize(out.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(static_cast<double>(w.size()) * iters / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * k * m * n * iters / 1e9, benchmark::Counter::kIsRate);
}

// A row of activations as the panel kernels read it: their own format, or f32 as it is.
size_t activation_row_bytes(const backend::cpu::simd::PanelKernels& p, int64_t k) {
  return p.x_row_bytes(k) ? p.x_row_bytes(k) : k * sizeof(float);
}
void to_panel_activations(const backend::cpu::simd::PanelKernels& p, const float* x, void* y,
                          int64_t k) {
  if (p.from_f32) {
    p.from_f32(x, y, k);
  } else {
    std::memcpy(y, x, k * sizeof(float));
  }
}

// The panel kernels (prefill with kPanelMinCols or more columns), packing included, as
// mul_mat runs them: one panel of 8 rows at a time against all n columns.
void BM_PanelGemm(benchmark::State& state, DType t, int64_t n, backend::cpu::simd::Isa isa) {
  namespace simd = backend::cpu::simd;
  const int64_t k = 2048, m = 256;
  const simd::PanelKernels* panel = simd::matmul_kernels(t, isa).panel;
  const size_t wrow = ml::row_size(t, k);
  std::vector<unsigned char> w(wrow * m);
  fill_weights(t, w.data(), w.size(), 1);
  std::vector<float> x(k * n);
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  for (float& v : x) v = dist(rng);
  const size_t xrow = activation_row_bytes(*panel, k);
  std::vector<unsigned char> xq(xrow * n), packed(panel->panel_bytes(k));
  for (int64_t c = 0; c < n; ++c)
    to_panel_activations(*panel, x.data() + c * k, xq.data() + c * xrow, k);
  std::vector<float> out(m * n);
  for (auto _ : state) {
    for (int64_t r = 0; r < m; r += simd::kPanelRows) {
      panel->pack(k, w.data() + r * wrow, wrow, simd::kPanelRows, packed.data());
      panel->gemm(k, packed.data(), xq.data(), xrow, out.data() + r, m, simd::kPanelRows,
                  static_cast<int>(n));
    }
    benchmark::DoNotOptimize(out.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * k * m * n * iters / 1e9, benchmark::Counter::kIsRate);
}

// Products on weights packed once beforehand (as mul_mat reads weights repacked at load time):
// with one column the compute ceiling of decode on panels, in weight bytes per second; with
// more (a decode batch, a prefill chunk), in GFLOP/s.
void BM_PackedGemm(benchmark::State& state, DType t, int64_t k, int64_t n,
                   backend::cpu::simd::Isa isa) {
  namespace simd = backend::cpu::simd;
  const int64_t m = 256;
  const simd::PanelKernels* panel = simd::matmul_kernels(t, isa).panel;
  const size_t wrow = ml::row_size(t, k);
  std::vector<unsigned char> w(wrow * m);
  fill_weights(t, w.data(), w.size(), 1);
  const size_t pbytes = panel->panel_bytes(k);
  std::vector<unsigned char> packed(pbytes * (m / simd::kPanelRows));
  for (int64_t r = 0; r < m; r += simd::kPanelRows) {
    panel->pack(k, w.data() + r * wrow, wrow, simd::kPanelRows,
                packed.data() + (r / simd::kPanelRows) * pbytes);
  }
  std::vector<float> x(k * n);
  std::mt19937 rng(5);
  std::normal_distribution<float> dist;
  for (float& v : x) v = dist(rng);
  const size_t xrow = activation_row_bytes(*panel, k);
  std::vector<unsigned char> xq(xrow * n);
  for (int64_t c = 0; c < n; ++c)
    to_panel_activations(*panel, x.data() + c * k, xq.data() + c * xrow, k);
  std::vector<float> out(m * n);
  for (auto _ : state) {
    for (int64_t r = 0; r < m; r += simd::kPanelRows) {
      panel->gemm(k, packed.data() + (r / simd::kPanelRows) * pbytes, xq.data(), xrow,
                  out.data() + r, m, simd::kPanelRows, static_cast<int>(n));
    }
    benchmark::DoNotOptimize(out.data());
  }
  const double iters = static_cast<double>(state.iterations());
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(packed.size()) * iters / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * k * m * n * iters / 1e9, benchmark::Counter::kIsRate);
}

int register_all() {
  const DType types[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                         DType::Q4_0, DType::Q4_K, DType::Q6_K};
  for (int64_t n : {1, 64, 512}) {
    for (DType t : types) {
      for (int64_t m : {2048, 8192}) {
        const std::string name = "MulMat/" + std::string(ml::dtype_name(t)) + "/k2048_m" +
                                 std::to_string(m) + "/n" + std::to_string(n);
        benchmark::RegisterBenchmark(name.c_str(), BM_MulMat, t, m, n)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  for (int64_t n : {1, 64}) {
    for (DType t : ml::kAllDTypes) {
      if (!backend::cpu::simd::scalar_kernels(t)) continue;
      const std::string name = "Gemm/" + std::string(ml::dtype_name(t)) + "/k2048_m256/n" +
                               std::to_string(n) + "/1thread_hot";
      benchmark::RegisterBenchmark(name.c_str(), BM_Gemm, t, n)->Unit(benchmark::kMicrosecond);
    }
  }
  // The panel kernels of every instruction set this CPU runs, for comparing them in one run.
  for (backend::cpu::simd::Isa isa : backend::cpu::simd::kAllIsas) {
    if (isa == backend::cpu::simd::Isa::kScalar || !backend::cpu::simd::isa_supported(isa)) {
      continue;
    }
    const std::string set = backend::cpu::simd::isa_name(isa);
    for (DType t : ml::kAllDTypes) {
      if (!backend::cpu::simd::matmul_kernels(t, isa).panel) continue;
      const std::string type(ml::dtype_name(t));
      const std::string name = "PanelGemm/" + type + "/k2048_m256/n64/1thread_hot/" + set;
      benchmark::RegisterBenchmark(name.c_str(), BM_PanelGemm, t, 64, isa)
          ->Unit(benchmark::kMicrosecond);
      // k = 8192: a feed-forward down projection, whose activation rows outgrow L1 at a few
      // columns.
      for (int64_t k : {2048, 8192}) {
        for (int64_t n : {1, 4, 64}) {
          const std::string packed = "PackedGemm/" + type + "/k" + std::to_string(k) + "_m256/n" +
                                     std::to_string(n) + "/1thread_hot/" + set;
          benchmark::RegisterBenchmark(packed.c_str(), BM_PackedGemm, t, k, n, isa)
              ->Unit(benchmark::kMicrosecond);
        }
      }
    }
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace corral

BENCHMARK_MAIN();
