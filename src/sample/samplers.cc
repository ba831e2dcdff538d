#include "sample/samplers.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <stdexcept>
#include <string>

namespace corral::sample {
namespace {

// First chunk sorted when top_p or typical_p needs candidates in order; doubled until the
// kept mass is reached, so a peaked distribution over a 150k vocabulary sorts a few dozen.
constexpr size_t kFirstChunk = 64;

// Probability order: larger logit first, ties to the lower id (so top_k = 1 is greedy).
template <class C>
bool before_by_logit(const C& a, const C& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

}  // namespace

Sampler::Sampler(const Options& options, int32_t n_vocab)
    : n_vocab_(n_vocab),
      top_k_(options.top_k),
      top_p_(options.top_p),
      min_p_(options.min_p),
      typical_p_(options.typical_p),
      temperature_(options.temperature),
      repeat_penalty_(options.repeat_penalty),
      presence_penalty_(options.presence_penalty),
      frequency_penalty_(options.frequency_penalty) {
  if (n_vocab <= 0) {
    throw std::invalid_argument("Sampler: vocabulary size must be positive, got " +
                                std::to_string(n_vocab));
  }
  // As llama.cpp's common params: -1 means the context size; other negatives disable.
  if (options.repeat_last_n == -1) {
    penalty_window_ = options.num_ctx > 0 ? options.num_ctx : -1;
  } else {
    penalty_window_ = std::max(options.repeat_last_n, 0);
  }
  if (repeat_penalty_ == 1.0f && presence_penalty_ == 0.0f && frequency_penalty_ == 0.0f) {
    penalty_window_ = 0;
  }
  cands_.resize(n_vocab);
  if (penalty_window_ != 0) {
    counts_.assign(n_vocab, 0);
    const size_t distinct = penalty_window_ > 0 ? static_cast<size_t>(penalty_window_) : n_vocab;
    seen_.reserve(std::min(distinct, static_cast<size_t>(n_vocab)));
  }
  reseed(options.seed);
}

void Sampler::reseed(int64_t seed) {
  if (seed < 0) {
    std::random_device rd;
    seed = (static_cast<int64_t>(rd()) << 31) ^ rd();
  }
  rng_.seed(static_cast<uint64_t>(seed));
}

double Sampler::next_uniform() {
  // 53 random bits: a uniform double in [0, 1), the same on every standard library.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> history) {
  assert(logits.size() == static_cast<size_t>(n_vocab_));
  for (int32_t i = 0; i < n_vocab_; ++i) cands_[i] = {logits[i], i, 0.0f};
  n_ = static_cast<size_t>(n_vocab_);
  sorted_ = 0;

  if (penalty_window_ != 0) apply_penalties(history);
  // top_k, top_p and min_p always keep the most likely token, so greedy decoding can skip them.
  if (temperature_ <= 0.0f && !(typical_p_ < 1.0f)) return argmax();
  top_k();
  typical();
  top_p();
  min_p();
  return temperature_ <= 0.0f ? argmax() : draw();
}

void Sampler::apply_penalties(std::span<const int32_t> history) {
  size_t first = 0;
  if (penalty_window_ > 0 && history.size() > static_cast<size_t>(penalty_window_)) {
    first = history.size() - penalty_window_;
  }
  for (size_t i = first; i < history.size(); ++i) {
    const int32_t t = history[i];
    if (t < 0 || t >= n_vocab_) continue;
    if (counts_[t]++ == 0) seen_.push_back(t);
  }
  for (int32_t t : seen_) {
    // Candidates are still in id order here. CTRL's repetition penalty divided every logit,
    // which makes a negative logit more likely; llama.cpp multiplies those instead.
    float& logit = cands_[t].logit;
    logit = logit <= 0.0f ? logit * repeat_penalty_ : logit / repeat_penalty_;
    // OpenAI's presence and frequency penalties: mu[j] -= c[j] * alpha_frequency +
    // (c[j] > 0) * alpha_presence.
    logit -= static_cast<float>(counts_[t]) * frequency_penalty_ + presence_penalty_;
    counts_[t] = 0;
  }
  seen_.clear();
}

void Sampler::sort_prefix_by_logit(size_t m) {
  m = std::min(m, n_);
  if (m <= sorted_) return;
  Candidate* c = cands_.data();
  auto cmp = [](const Candidate& a, const Candidate& b) { return before_by_logit(a, b); };
  if (m < n_) std::nth_element(c + sorted_, c + m, c + n_, cmp);
  std::sort(c + sorted_, c + m, cmp);
  sorted_ = m;
}

float Sampler::max_logit() const {
  if (sorted_ > 0) return cands_[0].logit;
  float m = -INFINITY;
  for (size_t i = 0; i < n_; ++i) m = std::max(m, cands_[i].logit);
  return m;
}

void Sampler::top_k() {
  if (top_k_ <= 0 || static_cast<size_t>(top_k_) >= n_) return;
  const size_t k = static_cast<size_t>(top_k_);
  std::partial_sort(cands_.begin(), cands_.begin() + k, cands_.begin() + n_,
                    [](const Candidate& a, const Candidate& b) { return before_by_logit(a, b); });
  n_ = k;
  sorted_ = k;
}

void Sampler::typical() {
  if (!(typical_p_ < 1.0f)) return;
  // Locally typical sampling (Meister et al. 2022): keep the tokens whose surprisal -log p is
  // closest to the entropy H, until their mass exceeds typical_p.
  const float mx = max_logit();
  double sum = 0;
  for (size_t i = 0; i < n_; ++i) sum += std::exp(static_cast<double>(cands_[i].logit - mx));
  const double log_sum = std::log(sum);
  double entropy = 0;
  for (size_t i = 0; i < n_; ++i) {
    const double log_p = static_cast<double>(cands_[i].logit - mx) - log_sum;
    if (std::isfinite(log_p)) entropy -= std::exp(log_p) * log_p;
  }
  for (size_t i = 0; i < n_; ++i) {
    const double log_p = static_cast<double>(cands_[i].logit - mx) - log_sum;
    cands_[i].key = static_cast<float>(std::abs(-log_p - entropy));
  }
  auto cmp = [](const Candidate& a, const Candidate& b) {
    return a.key < b.key || (a.key == b.key && a.id < b.id);
  };
  Candidate* c = cands_.data();
  size_t done = 0;
  double cum = 0;
  for (size_t chunk = kFirstChunk;; chunk *= 2) {
    const size_t m = std::min(done + chunk, n_);
    if (m < n_) std::nth_element(c + done, c + m, c + n_, cmp);
    std::sort(c + done, c + m, cmp);
    for (; done < m; ++done) {
      cum += std::exp(static_cast<double>(c[done].logit - mx) - log_sum);
      if (cum > typical_p_) {
        n_ = done + 1;
        sorted_ = 0;
        return;
      }
    }
    if (m == n_) break;
  }
  sorted_ = 0;
}

void Sampler::top_p() {
  if (!(top_p_ < 1.0f)) return;
  const float mx = max_logit();
  double sum = 0;
  for (size_t i = 0; i < n_; ++i) sum += std::exp(static_cast<double>(cands_[i].logit - mx));
  // Keep the smallest prefix, in probability order, whose mass reaches top_p.
  const double target = static_cast<double>(top_p_) * sum;
  double cum = 0;
  size_t i = 0;
  for (size_t chunk = kFirstChunk; i < n_; chunk *= 2) {
    sort_prefix_by_logit(i + chunk);
    for (; i < sorted_; ++i) {
      cum += std::exp(static_cast<double>(cands_[i].logit - mx));
      if (cum >= target) {
        n_ = i + 1;
        return;
      }
    }
  }
}

void Sampler::min_p() {
  if (!(min_p_ > 0.0f)) return;
  // p_i >= min_p * p_max  <=>  logit_i >= max_logit + log(min_p): no softmax needed.
  const size_t best = argmax_index();
  const Candidate top = cands_[best];
  const float threshold = top.logit + std::log(min_p_);
  size_t kept = 0;
  size_t kept_sorted = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (cands_[i].logit >= threshold) {
      if (i < sorted_) ++kept_sorted;
      cands_[kept++] = cands_[i];
    }
  }
  // Filtering in place keeps the relative order, so what survives of a sorted prefix stays a
  // sorted prefix.
  sorted_ = kept_sorted;
  n_ = kept;
  if (n_ == 0) {
    // Only min_p > 1 removes everything; the most likely token always stays.
    cands_[0] = top;
    n_ = 1;
    sorted_ = 1;
  }
}

size_t Sampler::argmax_index() const {
  size_t best = 0;
  for (size_t i = 1; i < n_; ++i) {
    if (before_by_logit(cands_[i], cands_[best])) best = i;
  }
  return best;
}

int32_t Sampler::argmax() const { return cands_[argmax_index()].id; }

int32_t Sampler::draw() {
  const float mx = max_logit();
  const double inv_t = 1.0 / static_cast<double>(temperature_);
  double sum = 0;
  for (size_t i = 0; i < n_; ++i) {
    const float w = static_cast<float>(std::exp(static_cast<double>(cands_[i].logit - mx) * inv_t));
    cands_[i].key = w;
    sum += w;
  }
  if (!(sum > 0) || !std::isfinite(sum)) return argmax();
  const double u = next_uniform() * sum;
  double cum = 0;
  for (size_t i = 0; i < n_; ++i) {
    cum += cands_[i].key;
    if (u < cum) return cands_[i].id;
  }
  // Rounding can leave u just above the final sum: the last candidate with weight takes it.
  for (size_t i = n_; i-- > 0;) {
    if (cands_[i].key > 0) return cands_[i].id;
  }
  return argmax();
}

}  // namespace corral::sample
