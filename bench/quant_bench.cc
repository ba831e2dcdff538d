// Reference quantize/dequantize throughput per dtype (scalar code: the baseline the SIMD
// kernels are measured against). One row of 2^16 gaussian-ish values; bytes/s counts floats.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "ml/dtype.h"
#include "ml/quant/quant.h"

namespace {

using corral::ml::DType;

std::vector<float> bench_data(int64_t n) {
  std::vector<float> x(n);
  uint64_t s = 1;
  for (float& v : x) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    v = static_cast<float>(static_cast<int32_t>(s >> 32)) * 4.6e-10f;
  }
  return x;
}

constexpr int64_t kN = 1 << 16;

void BM_Quantize(benchmark::State& state) {
  const DType t = corral::ml::kAllDTypes[state.range(0)];
  const std::vector<float> x = bench_data(kN);
  std::vector<uint8_t> q(corral::ml::row_size(t, kN));
  for (auto _ : state) {
    corral::ml::quant::quantize_row(t, x.data(), q.data(), kN);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetLabel(std::string(corral::ml::dtype_name(t)));
  state.SetBytesProcessed(state.iterations() * kN * static_cast<int64_t>(sizeof(float)));
}

void BM_Dequantize(benchmark::State& state) {
  const DType t = corral::ml::kAllDTypes[state.range(0)];
  const std::vector<float> x = bench_data(kN);
  std::vector<uint8_t> q(corral::ml::row_size(t, kN));
  corral::ml::quant::quantize_row(t, x.data(), q.data(), kN);
  std::vector<float> y(kN);
  for (auto _ : state) {
    corral::ml::quant::dequantize_row(t, q.data(), y.data(), kN);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetLabel(std::string(corral::ml::dtype_name(t)));
  state.SetBytesProcessed(state.iterations() * kN * static_cast<int64_t>(sizeof(float)));
}

constexpr int kNumDTypes = static_cast<int>(std::size(corral::ml::kAllDTypes));
BENCHMARK(BM_Quantize)->DenseRange(0, kNumDTypes - 1);
BENCHMARK(BM_Dequantize)->DenseRange(0, kNumDTypes - 1);

}  // namespace

BENCHMARK_MAIN();
