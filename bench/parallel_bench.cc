// Continuous batching: the aggregate generation rate (tokens/s over all sequences) of N
// simultaneous greedy sequences on one runner::Runner, against one sequence alone, on
// stories260K (GGUF f32) and small-llama-256 (converted from its Hugging Face checkpoint to F16
// at start). Each iteration submits N requests of different prompts and waits for all of them;
// only generated tokens count. Fixtures: $CORRAL_TESTDATA, else ../shared/testdata. Threads:
// $CORRAL_BENCH_THREADS, else the physical cores.
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "runner/runner.h"

namespace {

using corral::runner::Runner;

constexpr int kTokens = 64;  // generated per sequence

std::string testdata(const std::string& relative) {
  const char* env = std::getenv("CORRAL_TESTDATA");
  return std::string(env != nullptr ? env : "../shared/testdata") + "/" + relative;
}

int threads() {
  const char* env = std::getenv("CORRAL_BENCH_THREADS");
  return env ? std::atoi(env) : 0;
}

std::string model_path(const std::string& name) {
  if (name == "stories260K") return testdata("tinystories260k/stories260K-f32.gguf");
  // Removed at exit (a mapping of it may outlive the name).
  struct Converted {
    std::filesystem::path path = std::filesystem::temp_directory_path() /
                                 ("corral-parallel-bench-" + std::to_string(getpid()) + ".gguf");
    Converted() {
      corral::convert::ConvertOptions o;
      o.type = "F16";
      corral::convert::convert_hf(testdata("reference/small-llama-256"), path.string(), o);
    }
    ~Converted() {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  };
  static const Converted converted;
  return converted.path.string();
}

Runner& runner(const std::string& name, int parallel) {
  static std::map<std::pair<std::string, int>, std::unique_ptr<Runner>> cache;
  auto& r = cache[{name, parallel}];
  if (!r) {
    r = std::make_unique<Runner>(
        model_path(name), corral::runner::RunnerOptions{
                              .num_ctx = 256, .num_parallel = parallel, .n_threads = threads()});
  }
  return *r;
}

void BM_Generate(benchmark::State& state, const std::string& name) {
  const int parallel = static_cast<int>(state.range(0));
  Runner* r = nullptr;
  try {
    r = &runner(name, parallel);
  } catch (const std::exception& e) {
    return state.SkipWithError(e.what());
  }
  const int32_t n_vocab = static_cast<int32_t>(r->model().config().n_vocab);
  int64_t generated = 0;
  int round = 0;
  for (auto _ : state) {
    std::vector<std::shared_ptr<corral::runner::Sequence>> seqs;
    for (int i = 0; i < parallel; ++i) {
      corral::runner::SequenceRequest req;
      // Different prompts each round, so no request reuses another's cells.
      req.prompt = {1, (round * 7 + i * 13 + 5) % n_vocab, (round * 3 + i * 29 + 11) % n_vocab};
      req.options.temperature = 0;
      req.options.num_predict = kTokens;
      seqs.push_back(r->submit(std::move(req)));
    }
    for (auto& s : seqs) generated += s->result().stats.eval_count;
    ++round;
  }
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(generated), benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_Generate, stories260K, std::string("stories260K"))
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_Generate, small_llama_256, std::string("small-llama-256"))
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
