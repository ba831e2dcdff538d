// Continuous batching: the aggregate generation rate (tokens/s over all sequences) of N
// simultaneous greedy sequences on one runner::Runner, against one sequence alone, on
// stories260K (GGUF f32) and small-llama-256 (converted from its Hugging Face checkpoint to F16
// at start). Each iteration submits N requests of different prompts and waits for all of them;
// only generated tokens count. Time is the process's CPU time (every thread's), so that the
// ratio holds on a machine shared with other work; on an idle machine with one thread it is the
// wall time. Fixtures: $CORRAL_TESTDATA, else ../shared/testdata. Threads:
// $CORRAL_BENCH_THREADS, else the physical cores.
//
// $CORRAL_BENCH_MODEL names a GGUF file of your own (e.g. llama-3.2-1b Q4_0): it runs as "file"
// with 1, 2, 4 and 8 sequences (`--benchmark_filter=file`), with $CORRAL_BENCH_CTX cells per
// sequence (default 256). Every run also reports "wall tok/s", the aggregate rate by the wall
// clock (what a user sees on an otherwise idle machine). With
// $CORRAL_BENCH_PROFILE=1 each run also prints where a step's time goes (the CPU kernels op by
// op, per decode step, and what ran outside them).
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/profile.h"
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

bool profiling() {
  const char* env = std::getenv("CORRAL_BENCH_PROFILE");
  return env != nullptr && std::string(env) == "1";
}

// Per decode step (one token of every sequence): each kernel's time and share of the wall
// time, and what ran outside the kernels (graph recording, planning, sampling, detokenizing,
// waiting).
void print_profile(const std::string& label, double steps, double wall_ns) {
  const auto ops = corral::backend::cpu::profile();
  if (steps <= 0 || wall_ns <= 0) return;
  std::printf("\nprofile of %s, per step (%.0f steps, %.1f us each):\n", label.c_str(), steps,
              wall_ns / steps / 1e3);
  std::printf("| op | calls | us | share |\n| --- | ---: | ---: | ---: |\n");
  double in_ops = 0, mul_mat = 0;
  for (const auto& p : ops) {
    const auto ns = static_cast<double>(p.ns);
    in_ops += ns;
    if (p.name.starts_with("mul_mat")) mul_mat += ns;
    std::printf("| %s | %.1f | %.1f | %.1f%% |\n", p.name.c_str(),
                static_cast<double>(p.calls) / steps, ns / steps / 1e3, 100 * ns / wall_ns);
  }
  std::printf("| (all mul_mat) | | %.1f | %.1f%% |\n", mul_mat / steps / 1e3,
              100 * mul_mat / wall_ns);
  std::printf("| (outside the kernels) | | %.1f | %.1f%% |\n", (wall_ns - in_ops) / steps / 1e3,
              100 * (wall_ns - in_ops) / wall_ns);
  std::fflush(stdout);
}

std::string model_path(const std::string& name) {
  if (name == "file") {
    const char* env = std::getenv("CORRAL_BENCH_MODEL");
    if (env == nullptr) throw std::runtime_error("set CORRAL_BENCH_MODEL to a GGUF file");
    return env;
  }
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
    const char* ctx = std::getenv("CORRAL_BENCH_CTX");
    corral::runner::RunnerOptions o;
    o.num_ctx = ctx != nullptr ? std::atoi(ctx) : 256;
    o.num_parallel = parallel;
    o.n_threads = threads();
    r = std::make_unique<Runner>(model_path(name), std::move(o));
    // A first request makes what the first steps of each shape make once (packed weights,
    // plans, work buffers), so that the timed runs measure the steady state.
    std::vector<std::shared_ptr<corral::runner::Sequence>> warm;
    for (int i = 0; i < parallel; ++i) {
      corral::runner::SequenceRequest req;
      req.prompt = {1, 2 + i};
      req.options.temperature = 0;
      req.options.num_predict = 4;
      warm.push_back(r->submit(std::move(req)));
    }
    for (auto& s : warm) s->result();
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
  const bool profile = profiling();
  if (profile) {
    corral::backend::cpu::clear_profile();
    corral::backend::cpu::set_profiling(true);
  }
  std::chrono::nanoseconds wall{0};
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
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
    wall += std::chrono::steady_clock::now() - t0;
    ++round;
  }
  state.counters["tok/s"] =
      benchmark::Counter(static_cast<double>(generated), benchmark::Counter::kIsRate);
  const double wall_s = std::chrono::duration<double>(wall).count();
  if (wall_s > 0) state.counters["wall tok/s"] = static_cast<double>(generated) / wall_s;
  if (profile) {
    corral::backend::cpu::set_profiling(false);
    // Each step makes one token of every sequence (the prompts' steps are few and short).
    print_profile(name + "/" + std::to_string(parallel), static_cast<double>(generated) / parallel,
                  static_cast<double>(wall.count()));
  }
}

BENCHMARK_CAPTURE(BM_Generate, stories260K, std::string("stories260K"))
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();
BENCHMARK_CAPTURE(BM_Generate, small_llama_256, std::string("small-llama-256"))
    ->Arg(1)
    ->Arg(4)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

BENCHMARK_CAPTURE(BM_Generate, file, std::string("file"))
    ->Arg(1)
    ->Arg(2)
    ->Arg(4)
    ->Arg(8)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime();

}  // namespace

BENCHMARK_MAIN();
