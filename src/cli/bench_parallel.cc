#include "cli/bench_parallel.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>

namespace corral::cli {

std::vector<double> ParallelResult::samples_ts() const {
  std::vector<double> ts;
  for (size_t i = 0; i < samples_ns.size(); ++i) {
    ts.push_back(static_cast<double>(generated[i]) * 1e9 /
                 static_cast<double>(std::max<int64_t>(1, samples_ns[i])));
  }
  return ts;
}

double ParallelResult::mean_ts() const {
  const std::vector<double> ts = samples_ts();
  double s = 0;
  for (double t : ts) s += t;
  return ts.empty() ? 0 : s / static_cast<double>(ts.size());
}

std::vector<int> parse_parallel_list(const std::string& list) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string item = list.substr(start, comma - start);
    size_t used = 0;
    int n = 0;
    try {
      n = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size() || n < 1 || n > kMaxBenchParallel) {
      throw std::invalid_argument("--parallel: '" + item + "' is not a count of sequences 1.." +
                                  std::to_string(kMaxBenchParallel) + " (e.g. --parallel 1,2,4,8)");
    }
    out.push_back(n);
    start = comma + 1;
  }
  return out;
}

namespace {

using Clock = std::chrono::steady_clock;

std::vector<int32_t> prompt_for(int index, int n_tokens, int64_t n_vocab) {
  std::mt19937 rng(1000 + static_cast<uint32_t>(index));
  std::uniform_int_distribution<int32_t> dist(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> p(static_cast<size_t>(n_tokens));
  for (int32_t& t : p) t = dist(rng);
  return p;
}

// Submits n sequences at once and waits for all: each one's generated tokens, and the wall time.
std::vector<std::vector<int32_t>> round_of(runner::Runner& r, int n, int n_gen, int prompt_tokens,
                                           int64_t& ns) {
  const int64_t n_vocab = r.model().config().n_vocab;
  std::vector<std::shared_ptr<runner::Sequence>> seqs;
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i) {
    runner::SequenceRequest req;
    req.prompt = prompt_for(i, prompt_tokens, n_vocab);
    req.options.temperature = 0;
    req.options.num_predict = n_gen;
    seqs.push_back(r.submit(std::move(req)));
  }
  std::vector<std::vector<int32_t>> out;
  for (auto& s : seqs) {
    const runner::SequenceResult& res = s->result();
    const size_t n_out = static_cast<size_t>(res.stats.eval_count);
    const size_t begin = res.context.size() >= n_out ? res.context.size() - n_out : 0;
    out.emplace_back(res.context.begin() + static_cast<std::ptrdiff_t>(begin), res.context.end());
  }
  ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  return out;
}

}  // namespace

std::vector<ParallelResult> run_parallel_bench(runner::Runner& runner, std::span<const int> counts,
                                               int n_gen, int reps, int prompt_tokens) {
  std::vector<ParallelResult> results;
  std::map<int, std::vector<int32_t>> seen;  // prompt index -> tokens, from the smallest N so far
  for (int n : counts) {
    ParallelResult r{n, n_gen, {}, {}, {}};
    for (int rep = -1; rep < reps; ++rep) {  // rep -1: the warm-up
      int64_t ns = 0;
      const std::vector<std::vector<int32_t>> tokens =
          round_of(runner, n, n_gen, prompt_tokens, ns);
      if (rep < 0) continue;
      int64_t total = 0;
      r.tokens_per_sequence.clear();
      for (size_t i = 0; i < tokens.size(); ++i) {
        total += static_cast<int64_t>(tokens[i].size());
        r.tokens_per_sequence.push_back(static_cast<int>(tokens[i].size()));
        const auto it = seen.find(static_cast<int>(i));
        if (it == seen.end()) continue;
        ++r.compared;
        if (it->second != tokens[i]) r.same_as_fewer = false;
      }
      r.samples_ns.push_back(ns);
      r.generated.push_back(total);
      if (rep == reps - 1) {
        for (size_t i = 0; i < tokens.size(); ++i) seen.emplace(static_cast<int>(i), tokens[i]);
      }
    }
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace corral::cli
