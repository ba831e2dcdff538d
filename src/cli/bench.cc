// `corral bench MODEL [-p 512] [-n 128] [-t THREADS] [-r REPS] [--gpu | -g LAYERS] [--json]
// [--profile] [--parallel 1,2,4,8]`:
// llama-bench's two throughput tests, on the CPU backend or with layers offloaded to the GPU.
// With --parallel, instead: the aggregate rate of N greedy sequences at once through the runner
// (bench_parallel.h), n tokens each.
// pp<p>: one prefill of p tokens from an empty cache in batches of num_batch; tg<n>: n decode steps
// of one token each after a one-token prompt. Each test runs once to warm up (page in the mmapped
// weights, plan the graph), then `reps` times; the report is the mean and standard deviation of
// tokens per second. Token ids are random (fixed seed) and valid: throughput does not depend on
// which tokens are evaluated.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu/profile.h"
#include "backend/cpu/threadpool.h"
#include "cli/bench_parallel.h"
#include "cli/commands.h"
#include "ml/gguf/reader.h"
#include "runner/engine.h"
#include "runner/runner.h"
#include "sample/options.h"
#include "store/model.h"
#include "store/store.h"

namespace corral::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  std::string model;
  int n_prompt = 512;
  int n_gen = 128;
  int threads = 0;  // 0: physical cores
  int reps = 5;
  bool json = false;
  bool profile = false;  // time each op of the tg test
  int num_gpu = 0;       // layers offloaded to the GPU (Ollama's num_gpu); -1: all
  std::string parallel;  // "1,2,4,8": the parallel test for each count instead of pp and tg
};

// What every row of the report says about the model and the machine.
struct ModelFacts {
  std::string name;  // as given (a store name or a path)
  std::string path;  // the GGUF file
  std::string arch;
  std::string type;   // general.file_type's name, else the dtype most weights have
  uint64_t size = 0;  // bytes of all tensors
  // Bytes a generated token reads: every tensor but the embedding table when the output
  // projection is a tensor of its own (then one row of it is read), and per position of
  // context the f16 K and V cache of every layer.
  uint64_t weight_bytes_per_token = 0;
  uint64_t kv_bytes_per_position = 0;
  uint64_t n_params = 0;
  // Operations of one token's pass through the weight matrices: 2 (a multiply and an add) x
  // the parameters of every 2-D weight but the token embedding and the output projection (a
  // prompt's logits are computed for its last token only), as prefill's arithmetic is counted
  // against the int8 dot-product peak (bench/int8_peak.cc).
  uint64_t flops_per_token = 0;
  int threads = 0;
  std::string backend = "CPU";  // "CUDA" when layers are offloaded
  int gpu_layers = 0;
};

ModelFacts model_facts(const ml::gguf::File& f, const model::Model& model,
                       const store::ModelInfo& info, int threads) {
  ModelFacts m;
  m.name = info.name;
  m.path = info.gguf.string();
  m.arch = model.config().architecture;
  const bool tied = f.find_tensor("output.weight") == nullptr;
  for (const auto& t : f.tensors()) {
    m.size += t.nbytes;
    m.n_params += static_cast<uint64_t>(t.n_elements());
    if (tied || t.name != "token_embd.weight") m.weight_bytes_per_token += t.nbytes;
    if (t.n_dims >= 2 && t.name != "token_embd.weight" && t.name != "output.weight") {
      m.flops_per_token += 2 * static_cast<uint64_t>(t.n_elements());
    }
  }
  const model::Config& c = model.config();
  m.kv_bytes_per_position = static_cast<uint64_t>(c.n_layer) * c.n_head_kv *
                            (c.head_dim_k + c.head_dim_v) * sizeof(uint16_t);
  if (const ml::gguf::Value* ft = f.metadata().find("general.file_type"); ft && ft->as_integer()) {
    m.type =
        file_type_name(*ft->as_integer()).value_or("ftype " + std::to_string(*ft->as_integer()));
  } else {
    std::map<ml::DType, int64_t> weights;
    for (const auto& t : f.tensors()) {
      if (t.n_dims >= 2) weights[t.dtype] += t.n_elements();
    }
    m.type = "unknown";
    if (!weights.empty()) {
      auto best =
          std::max_element(weights.begin(), weights.end(),
                           [](const auto& a, const auto& b) { return a.second < b.second; });
      m.type = std::string(ml::dtype_name(best->first));
      std::transform(m.type.begin(), m.type.end(), m.type.begin(), ::toupper);
    }
  }
  m.threads = threads > 0 ? threads : backend::cpu::physical_cores();
  return m;
}

ModelFacts model_facts(const runner::Engine& engine, const store::ModelInfo& info, int threads) {
  ModelFacts m = model_facts(engine.file(), engine.model(), info, threads);
  m.gpu_layers = engine.gpu_layers();
  if (engine.gpu()) m.backend = "CUDA";
  return m;
}

// llama-bench's units: "1.61 GiB", "12.50 MiB"; "1.24 B", "292.46 K".
std::string human_size(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
  } else {
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1ull << 20));
  }
  return buf;
}

std::string human_params(uint64_t n) {
  char buf[32];
  const double x = static_cast<double>(n);
  if (x >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f B", x / 1e9);
  } else if (x >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", x / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f K", x / 1e3);
  }
  return buf;
}

struct TestResult {
  std::string name;  // pp512, tg128
  int n_prompt = 0;
  int n_gen = 0;
  std::vector<int64_t> samples_ns;

  std::vector<double> samples_ts() const {
    const int n = n_prompt + n_gen;
    std::vector<double> ts;
    for (int64_t ns : samples_ns)
      ts.push_back(n * 1e9 / static_cast<double>(std::max<int64_t>(1, ns)));
    return ts;
  }
  double mean_ts() const {
    const std::vector<double> ts = samples_ts();
    double s = 0;
    for (double t : ts) s += t;
    return ts.empty() ? 0 : s / static_cast<double>(ts.size());
  }
  // Sample standard deviation, as llama-bench reports it (0 for a single sample).
  double stddev_ts() const {
    const std::vector<double> ts = samples_ts();
    if (ts.size() < 2) return 0;
    const double mean = mean_ts();
    double s = 0;
    for (double t : ts) s += (t - mean) * (t - mean);
    return std::sqrt(s / static_cast<double>(ts.size() - 1));
  }
};

std::vector<int32_t> random_tokens(int n, int64_t n_vocab, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int32_t& t : tokens) t = dist(rng);
  return tokens;
}

TestResult run_prompt_test(runner::Engine& engine, int n_prompt, int reps, int num_batch,
                           int64_t num_ctx, std::mt19937& rng, bool profile) {
  TestResult r{"pp" + std::to_string(n_prompt), n_prompt, 0, {}};
  const std::vector<int32_t> tokens = random_tokens(n_prompt, engine.model().config().n_vocab, rng);
  if (profile) backend::cpu::clear_profile();
  for (int rep = -1; rep < reps; ++rep) {  // rep -1: the warm-up
    if (profile && rep >= 0) backend::cpu::set_profiling(true);
    const auto t0 = Clock::now();
    engine.bench_evaluate(tokens, 0, num_batch, num_ctx);
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
    backend::cpu::set_profiling(false);
    if (rep >= 0) r.samples_ns.push_back(ns.count());
  }
  return r;
}

TestResult run_gen_test(runner::Engine& engine, int n_gen, int reps, int num_batch, int64_t num_ctx,
                        std::mt19937& rng, bool profile) {
  TestResult r{"tg" + std::to_string(n_gen), 0, n_gen, {}};
  const std::vector<int32_t> tokens =
      random_tokens(n_gen + 1, engine.model().config().n_vocab, rng);
  if (profile) backend::cpu::clear_profile();
  for (int rep = -1; rep < reps; ++rep) {
    engine.bench_evaluate(std::span(tokens).first(1), 0, num_batch, num_ctx);
    if (profile && rep >= 0) backend::cpu::set_profiling(true);
    const auto t0 = Clock::now();
    for (int i = 1; i <= n_gen; ++i) {
      engine.bench_evaluate(std::span(tokens).subspan(static_cast<size_t>(i), 1), i, num_batch,
                            num_ctx);
    }
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0);
    backend::cpu::set_profiling(false);
    if (rep >= 0) r.samples_ns.push_back(ns.count());
  }
  return r;
}

// The fields of the model and the run that every JSON line starts with.
nlohmann::ordered_json model_json(const ModelFacts& m) {
  nlohmann::ordered_json j;
  j["model"] = m.name;
  j["model_path"] = m.path;
  j["model_arch"] = m.arch;
  j["model_type"] = m.type;
  j["model_size"] = m.size;
  j["model_n_params"] = m.n_params;
  j["flops_per_token"] = m.flops_per_token;
  j["backend"] = m.backend;
  j["n_threads"] = m.threads;
  j["n_gpu_layers"] = m.gpu_layers;
  return j;
}

void print_json(const ModelFacts& m, const TestResult& r) {
  nlohmann::ordered_json j = model_json(m);
  j["test"] = r.name;
  j["n_prompt"] = r.n_prompt;
  j["n_gen"] = r.n_gen;
  j["avg_ts"] = r.mean_ts();
  j["stddev_ts"] = r.stddev_ts();
  j["samples_ns"] = r.samples_ns;
  j["samples_ts"] = r.samples_ts();
  if (r.n_gen > 0) {
    // The cache holds 1..n_gen positions over the test (after a one-token prompt).
    j["bytes_per_token"] =
        m.weight_bytes_per_token + m.kv_bytes_per_position * static_cast<uint64_t>(r.n_gen / 2 + 1);
  }
  std::cout << j.dump() << "\n" << std::flush;
}

// Per generated token: each op's calls and time, its share of the test's time, and the rate at
// which it read memory (a matrix product's weights); then what ran outside the CPU kernels.
void print_profile(const TestResult& r) {
  const std::vector<backend::cpu::OpProfile> ops = backend::cpu::profile();
  const double tokens =
      static_cast<double>(r.n_prompt + r.n_gen) * static_cast<double>(r.samples_ns.size());
  double total_ns = 0;
  for (int64_t ns : r.samples_ns) total_ns += static_cast<double>(ns);
  if (tokens <= 0 || total_ns <= 0) return;
  std::cout << "\nprofile of " << r.name << " (CPU kernels, per "
            << (r.n_gen > 0 ? "generated" : "prompt") << " token):\n\n"
            << "| op | calls | us | share | GB/s |\n| --- | ---: | ---: | ---: | ---: |\n";
  double in_ops = 0;
  char line[256];
  for (const auto& p : ops) {
    const double ns = static_cast<double>(p.ns);
    in_ops += ns;
    std::snprintf(line, sizeof line, "| %s | %.1f | %.1f | %.1f%% | %.2f |\n", p.name.c_str(),
                  static_cast<double>(p.calls) / tokens, ns / tokens / 1e3, 100 * ns / total_ns,
                  ns > 0 ? static_cast<double>(p.bytes) / ns : 0.0);
    std::cout << line;
  }
  std::snprintf(line, sizeof line, "| (outside the kernels) | | %.1f | %.1f%% | |\n",
                (total_ns - in_ops) / tokens / 1e3, 100 * (total_ns - in_ops) / total_ns);
  std::cout << line << std::flush;
}

void print_table_header() {
  std::cout << "| model | size | params | backend | threads | test | t/s |\n"
            << "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n";
}

void print_table_row(const ModelFacts& m, const TestResult& r) {
  char ts[64];
  std::snprintf(ts, sizeof ts, "%.2f ± %.2f", r.mean_ts(), r.stddev_ts());
  std::cout << "| " << m.arch << " " << m.type << " | " << human_size(m.size) << " | "
            << human_params(m.n_params) << " | " << m.backend << " | " << m.threads << " | "
            << r.name << " | " << ts << " |\n"
            << std::flush;
}

void print_parallel_json(const ModelFacts& m, const ParallelResult& r) {
  nlohmann::ordered_json j = model_json(m);
  j["test"] = "parallel" + std::to_string(r.n_parallel);
  j["n_parallel"] = r.n_parallel;
  j["n_gen"] = r.n_gen;
  j["avg_ts"] = r.mean_ts();  // generated tokens of all sequences per second of wall time
  j["samples_ns"] = r.samples_ns;
  j["samples_ts"] = r.samples_ts();
  j["generated"] = r.generated;
  j["tokens_per_sequence"] = r.tokens_per_sequence;
  j["same_as_fewer"] = r.same_as_fewer;
  j["compared"] = r.compared;
  std::cout << j.dump() << "\n" << std::flush;
}

// The parallel test: one runner with a slot for each of the largest N's sequences and room for
// a short prompt and n tokens in each.
void run_parallel(const BenchArgs& a, const store::ModelInfo& info) {
  if (a.num_gpu != 0) throw std::invalid_argument("--parallel runs on the CPU (no --gpu)");
  if (a.n_gen < 1) throw std::invalid_argument("--parallel needs -n of at least 1");
  const std::vector<int> counts = parse_parallel_list(a.parallel);
  constexpr int kPromptTokens = 8;
  const int max_n = *std::max_element(counts.begin(), counts.end());
  runner::Runner runner(
      info.gguf.string(),
      {.num_ctx = kPromptTokens + a.n_gen + 1, .num_parallel = max_n, .n_threads = a.threads});
  const ModelFacts facts = model_facts(runner.file(), runner.model(), info, a.threads);
  if (!a.json) {
    std::cout << "model: " << facts.name;
    if (facts.path != facts.name) std::cout << " (" << facts.path << ")";
    std::cout << "\n"
              << kPromptTokens << "-token prompts, " << a.n_gen
              << " greedy tokens each; t/s: all sequences' tokens per second\n\n"
              << "| model | threads | sequences | t/s | same tokens as fewer |\n"
              << "| --- | ---: | ---: | ---: | --- |\n";
  }
  for (const ParallelResult& r :
       run_parallel_bench(runner, counts, a.n_gen, a.reps, kPromptTokens)) {
    if (a.json) {
      print_parallel_json(facts, r);
      continue;
    }
    char ts[64];
    std::snprintf(ts, sizeof ts, "%.2f", r.mean_ts());
    std::cout << "| " << facts.arch << " " << facts.type << " | " << facts.threads << " | "
              << r.n_parallel << " | " << ts << " | "
              << (r.compared == 0   ? "-"
                  : r.same_as_fewer ? "yes"
                                    : "NO")
              << " |\n"
              << std::flush;
  }
}

void run_bench(const BenchArgs& a) {
  if (a.n_prompt < 0 || a.n_gen < 0) throw std::invalid_argument("-p and -n must not be negative");
  if (a.reps < 1) throw std::invalid_argument("-r must be at least 1");
  const store::ModelInfo info = store::resolve(store::Store(store::Store::default_root()), a.model);
  if (!a.parallel.empty()) return run_parallel(a, info);
  runner::Engine engine(info.gguf.string(), {.n_threads = a.threads, .num_gpu = a.num_gpu});
  const ModelFacts facts = model_facts(engine, info, a.threads);
  const int num_batch = sample::Options{}.num_batch;
  // Room for the longer test; the cache size does not change between tests, so the warm-up of
  // the first also allocates it for the second.
  const int64_t num_ctx = std::max(a.n_prompt, a.n_gen + 1);
  if (engine.model().config().n_ctx_train > 0 && num_ctx > engine.model().config().n_ctx_train) {
    std::cerr << "warning: " << num_ctx << " tokens exceed the training context ("
              << engine.model().config().n_ctx_train << ")\n";
  }
  // A benchmark needs its whole context: refused (naming the sizes) rather than lowered when
  // memory does not hold it.
  runner::admit_in_process(a.model, engine.memory_needs(num_ctx, num_batch), num_ctx);
  std::mt19937 rng(42);
  if (!a.json) {
    std::cout << "model: " << facts.name;
    if (facts.path != facts.name) std::cout << " (" << facts.path << ")";
    std::cout << "\n\n";
    print_table_header();
  }
  auto report = [&](const TestResult& r) {
    if (a.json) {
      print_json(facts, r);
    } else {
      print_table_row(facts, r);
    }
  };
  if (a.n_prompt > 0) {
    const TestResult r =
        run_prompt_test(engine, a.n_prompt, a.reps, num_batch, num_ctx, rng, a.profile);
    report(r);
    if (a.profile && !a.json) print_profile(r);
  }
  if (a.n_gen > 0) {
    const TestResult r = run_gen_test(engine, a.n_gen, a.reps, num_batch, num_ctx, rng, a.profile);
    report(r);
    if (a.profile && !a.json) print_profile(r);
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prompt processing and generation throughput, as llama-bench does");
  cmd->add_option("model", args->model, "A .gguf file or a model name in the store")->required();
  cmd->add_option("-p,--n-prompt", args->n_prompt, "Prompt tokens of the pp test (0: skip it)")
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", args->n_gen, "Generated tokens of the tg test (0: skip it)")
      ->capture_default_str();
  cmd->add_option("-t,--threads", args->threads, "CPU threads (default: physical cores)");
  cmd->add_option("-r,--repetitions", args->reps, "Timed repetitions of each test")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "One JSON object per test, with every sample");
  cmd->add_flag("--profile", args->profile,
                "After each test, the time of each CPU op per prompt or generated token");
  cmd->add_option("-g,--num-gpu", args->num_gpu,
                  "Layers to offload to the GPU (Ollama's num_gpu; -1: all; needs a CUDA build)")
      ->capture_default_str();
  cmd->add_flag_callback(
      "--gpu", [args] { args->num_gpu = -1; }, "Offload every layer to the GPU (--num-gpu -1)");
  cmd->add_option("--parallel", args->parallel,
                  "Instead of pp and tg: for each count N in the list (e.g. 1,2,4,8), N greedy "
                  "sequences of -n tokens at once through the runner, reporting all their tokens "
                  "per second");
  cmd->callback([args] { run_bench(*args); });
}

}  // namespace corral::cli
