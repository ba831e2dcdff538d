// corral quantize's throughput: write_model on a synthetic F32 weight (one 4096 x 2048 matrix,
// 32 MiB, gaussian-ish values) to a GGUF under /tmp, per target type and thread count.
// bytes/s counts the F32 input. The K types spend their time in the scale searches
// (make_qkx2_quants), so they scale with threads; Q8_0/Q4_0 are bound by memory and the write.
//   build/quantize_bench [--benchmark_filter=Q4_K_M]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/cpu/threadpool.h"
#include "convert/quantize.h"

namespace {

using corral::convert::TensorSource;

const std::vector<float>& weights() {
  static const std::vector<float> w = [] {
    std::vector<float> x(4096 * 2048);
    uint64_t s = 1;
    for (float& v : x) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v = static_cast<float>(static_cast<int32_t>(s >> 32)) * 4.6e-10f;
    }
    return x;
  }();
  return w;
}

void write(benchmark::State& state, const char* type) {
  const auto& w = weights();
  const std::vector<TensorSource> sources = {
      {"blk.0.ffn_up.weight",
       {4096, 2048},
       corral::ml::DType::F32,
       {reinterpret_cast<const uint8_t*>(w.data()), w.size() * sizeof(float)},
       {}},
  };
  corral::ml::gguf::Metadata md;
  md.set("general.architecture", "llama");
  md.set("llama.block_count", uint32_t{1});
  const std::string path = "/tmp/corral-quantize-bench-" + std::to_string(::getpid()) + ".gguf";
  const auto q = corral::convert::parse_quant_type(type);
  for (auto _ : state) {
    corral::convert::write_model(md, sources, q, path,
                                 {.n_threads = static_cast<int>(state.range(0)), .progress = {}});
  }
  std::filesystem::remove(path);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(w.size() * sizeof(float)));
  state.SetLabel(type);
}

void threads(benchmark::internal::Benchmark* b) {
  const int n = corral::backend::cpu::physical_cores();
  for (int t = 1; t < n; t *= 2) b->Arg(t);
  b->Arg(n);
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

BENCHMARK_CAPTURE(write, Q8_0, "Q8_0")->Apply(threads);
BENCHMARK_CAPTURE(write, Q4_0, "Q4_0")->Apply(threads);
BENCHMARK_CAPTURE(write, Q4_K_M, "Q4_K_M")->Apply(threads);
BENCHMARK_CAPTURE(write, Q6_K, "Q6_K")->Apply(threads);
BENCHMARK_CAPTURE(write, Q2_K, "Q2_K")->Apply(threads);

}  // namespace

BENCHMARK_MAIN();
