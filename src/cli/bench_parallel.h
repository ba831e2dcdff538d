// `corral bench --parallel 1,2,4,8`: the aggregate generation rate of N simultaneous greedy
// sequences through one runner::Runner (continuous batching: a decode step of N sequences is one
// forward pass over N tokens), for each N asked.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "runner/runner.h"

namespace corral::cli {

struct ParallelResult {
  int n_parallel = 0;
  int n_gen = 0;                         // tokens asked of each sequence
  std::vector<int64_t> samples_ns;       // wall time of each repetition: first submit to last end
  std::vector<int64_t> generated;        // tokens generated over all sequences, per repetition
  std::vector<int> tokens_per_sequence;  // of the last repetition (fewer than n_gen: EOS)
  // Whether every sequence generated the tokens its prompt generated with fewer companions (in
  // a smaller N of the same run; sequence i always gets prompt i). True where none compared.
  bool same_as_fewer = true;
  int compared = 0;  // sequence outputs compared with a smaller N's, over the repetitions

  std::vector<double> samples_ts() const;  // aggregate tokens per second
  double mean_ts() const;
};

// Largest N accepted (each is a sequence slot of the runner's KV cache).
inline constexpr int kMaxBenchParallel = 64;

// Parses "1,2,4,8": each 1..kMaxBenchParallel; throws std::invalid_argument naming the bad item.
std::vector<int> parse_parallel_list(const std::string& list);

// One warm-up round per N, then reps timed rounds; prompts are prompt_tokens random token ids
// (seeded by the sequence's index, so the same in every round and every N).
std::vector<ParallelResult> run_parallel_bench(runner::Runner& runner, std::span<const int> counts,
                                               int n_gen, int reps, int prompt_tokens);

}  // namespace corral::cli
