// Picks the next token from a row of logits, with the sampler chain llama.cpp runs for Ollama
// (common/sampling.cpp's default order):
//
//   penalties → top_k → typical_p → top_p → min_p → temperature → seeded draw
//
// Each truncation step works on the candidates the previous one left, with probabilities
// renormalized over them (softmax at temperature 1); the temperature only shapes the final draw,
// which is from softmax(logit / T) over the survivors. temperature <= 0 takes the most likely
// survivor instead (ties go to the lowest token id).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "sample/options.h"

namespace corral::sample {

class Sampler {
 public:
  struct Candidate {
    float logit;  // after the penalties
    int32_t id;
    float p;    // scratch: a probability or an unnormalized weight
    float key;  // scratch: the typical-sampling score
  };

  // Takes the sampling fields of `options` (and num_ctx for repeat_last_n = -1). A negative seed
  // draws one from std::random_device. All buffers are sized here for a vocabulary of n_vocab.
  Sampler(const Options& options, int32_t n_vocab);

  // The next token. `logits` holds one value per vocabulary entry; `history` is the sequence so
  // far (prompt and generated tokens), of which the last repeat_last_n are penalized. Ids
  // outside the vocabulary in the history are ignored. Does not allocate.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> history);

  // Restarts the random stream as if constructed with this seed (negative: a random one).
  void reseed(int64_t seed);

  int32_t n_vocab() const { return n_vocab_; }

  // The candidates the last call chose among, after truncation (in no particular order), with
  // their penalized logits. Empty after a greedy pick (temperature <= 0 and typical_p >= 1),
  // which skips truncation, as truncation cannot remove the most likely token.
  std::span<const Candidate> last_candidates() const { return {cands_.data(), n_}; }

 private:
  // Writes the penalized row to penalized_; false when no token of the window is in the vocabulary.
  bool apply_penalties(std::span<const float> logits, std::span<const int32_t> history);
  void top_k(const float* row);
  void typical();
  void top_p();
  void min_p();
  size_t argmax_index() const;
  int32_t argmax() const;
  int32_t draw();
  float max_logit() const;
  double next_uniform();

  int32_t n_vocab_;
  int top_k_;
  float top_p_, min_p_, typical_p_, temperature_;
  float repeat_penalty_, presence_penalty_, frequency_penalty_;
  int penalty_window_;  // tokens of history penalized; -1: all of it

  std::vector<float> penalized_;  // the logits after the penalties
  std::vector<Candidate> cands_;
  size_t n_ = 0;                 // live candidates: cands_[0, n_)
  bool front_is_max_ = false;    // cands_[0] has the largest logit (top_k left them sorted)
  std::vector<int32_t> counts_;  // per token id, occurrences in the penalty window
  std::vector<int32_t> seen_;    // ids with a non-zero count, to reset counts_ cheaply
  std::mt19937_64 rng_;
};

}  // namespace corral::sample
