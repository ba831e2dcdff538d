#include "sample/samplers.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <stdexcept>
#include <string>

namespace corral::sample {
namespace {

using Candidate = Sampler::Candidate;

// Probability order: larger logit first, ties to the lower id (so top_k = 1 is greedy).
bool before_by_logit(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

// Ranges this short are sorted and scanned rather than partitioned.
constexpr size_t kSortBelow = 32;

// Reorders c[0, n) so that its first r elements are the shortest prefix, in the strict order
// `before`, whose total of `p` reaches `target` (exceeds it when `strict`), and returns r; n
// when the total falls short. The prefix itself is left unordered. A quickselect that sums the
// weights of the part it keeps: expected linear time, where sorting would be n log n and would
// dominate on a 150k vocabulary with a flat distribution.
template <class Before>
size_t select_mass(Candidate* c, size_t n, double target, bool strict, Before before) {
  auto reached = [&](double mass) { return strict ? mass > target : mass >= target; };
  size_t lo = 0;
  size_t hi = n;
  double acc = 0;  // weight of c[0, lo), all of which precedes c[lo, hi)
  while (hi - lo > kSortBelow) {
    // Median of three as the pivot, moved out of the way to c[hi - 1].
    Candidate* a = c + lo;
    Candidate* b = c + lo + (hi - lo) / 2;
    Candidate* z = c + hi - 1;
    if (before(*b, *a)) std::swap(*a, *b);
    if (before(*z, *b)) std::swap(*b, *z);
    if (before(*b, *a)) std::swap(*a, *b);
    std::swap(*b, *z);
    const Candidate pivot = *z;
    Candidate* mid =
        std::partition(c + lo, z, [&](const Candidate& x) { return before(x, pivot); });
    std::swap(*mid, *z);
    const size_t m = static_cast<size_t>(mid - c);
    double left = 0;
    for (size_t i = lo; i < m; ++i) left += c[i].p;
    if (reached(acc + left)) {
      hi = m;
    } else if (reached(acc + left + pivot.p)) {
      return m + 1;
    } else {
      acc += left + pivot.p;
      lo = m + 1;
    }
  }
  std::sort(c + lo, c + hi, before);
  for (size_t i = lo; i < hi; ++i) {
    acc += c[i].p;
    if (reached(acc)) return i + 1;
  }
  return n;
}

// The id of the first largest logit (ties go to the lowest id; NaN is never chosen), 0 when
// none is above -inf. Greedy decoding runs this over the whole vocabulary for every token of
// every sequence, between one decode step and the next: the maximum is taken in independent
// lanes with no branch (the compiler makes them vector max instructions), then its first
// position is found, instead of one compare-and-branch per logit.
int32_t first_max(const float* row, int32_t n) {
  constexpr int32_t kLanes = 16;
  float lane[kLanes];
  std::fill(lane, lane + kLanes, -INFINITY);
  int32_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int32_t j = 0; j < kLanes; ++j) lane[j] = row[i + j] > lane[j] ? row[i + j] : lane[j];
  }
  float best = -INFINITY;
  for (int32_t j = 0; j < kLanes; ++j) best = lane[j] > best ? lane[j] : best;
  for (; i < n; ++i) best = row[i] > best ? row[i] : best;
  if (best == -INFINITY) return 0;
  int32_t at = 0;
  while (row[at] != best) ++at;
  return at;
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
    penalized_.resize(n_vocab);
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
  const float* row = logits.data();
  if (penalty_window_ != 0 && apply_penalties(logits, history)) row = penalized_.data();
  front_is_max_ = false;

  // top_k, top_p and min_p always keep the most likely token, so greedy decoding can skip them.
  if (temperature_ <= 0.0f && !(typical_p_ < 1.0f)) {
    n_ = 0;
    return first_max(row, n_vocab_);
  }
  if (top_k_ > 0 && top_k_ < n_vocab_) {
    top_k(row);
  } else {
    for (int32_t i = 0; i < n_vocab_; ++i) cands_[i] = {row[i], i, 0.0f, 0.0f};
    n_ = static_cast<size_t>(n_vocab_);
  }
  typical();
  top_p();
  min_p();
  return temperature_ <= 0.0f ? argmax() : draw();
}

bool Sampler::apply_penalties(std::span<const float> logits, std::span<const int32_t> history) {
  size_t first = 0;
  if (penalty_window_ > 0 && history.size() > static_cast<size_t>(penalty_window_)) {
    first = history.size() - penalty_window_;
  }
  for (size_t i = first; i < history.size(); ++i) {
    const int32_t t = history[i];
    if (t < 0 || t >= n_vocab_) continue;
    if (counts_[t]++ == 0) seen_.push_back(t);
  }
  if (seen_.empty()) return false;
  std::copy(logits.begin(), logits.end(), penalized_.begin());
  for (int32_t t : seen_) {
    // CTRL's repetition penalty divided every logit, which makes a negative logit more likely;
    // llama.cpp multiplies those instead.
    float& logit = penalized_[t];
    logit = logit <= 0.0f ? logit * repeat_penalty_ : logit / repeat_penalty_;
    // OpenAI's presence and frequency penalties: mu[j] -= c[j] * alpha_frequency +
    // (c[j] > 0) * alpha_presence.
    logit -= static_cast<float>(counts_[t]) * frequency_penalty_ + presence_penalty_;
    counts_[t] = 0;
  }
  seen_.clear();
  return true;
}

float Sampler::max_logit() const {
  if (front_is_max_) return cands_[0].logit;
  float m = -INFINITY;
  for (size_t i = 0; i < n_; ++i) m = std::max(m, cands_[i].logit);
  return m;
}

void Sampler::top_k(const float* row) {
  // One pass with a heap of the k best so far, its worst on top: almost every logit loses the
  // single comparison against that worst one, so this costs little more than reading the row.
  const size_t k = static_cast<size_t>(top_k_);
  auto cmp = [](const Candidate& a, const Candidate& b) { return before_by_logit(a, b); };
  Candidate* heap = cands_.data();
  for (size_t i = 0; i < k; ++i) heap[i] = {row[i], static_cast<int32_t>(i), 0.0f, 0.0f};
  std::make_heap(heap, heap + k, cmp);
  for (size_t i = k; i < static_cast<size_t>(n_vocab_); ++i) {
    // A later id with an equal logit ranks below, so only a strictly larger logit gets in.
    if (row[i] > heap[0].logit) {
      std::pop_heap(heap, heap + k, cmp);
      heap[k - 1] = {row[i], static_cast<int32_t>(i), 0.0f, 0.0f};
      std::push_heap(heap, heap + k, cmp);
    }
  }
  std::sort_heap(heap, heap + k, cmp);
  n_ = k;
  front_is_max_ = true;
}

void Sampler::typical() {
  if (!(typical_p_ < 1.0f)) return;
  // Locally typical sampling (Meister et al. 2022): keep the tokens whose surprisal -log p is
  // closest to the entropy H, until their mass exceeds typical_p.
  const float mx = max_logit();
  double sum = 0;
  for (size_t i = 0; i < n_; ++i) sum += cands_[i].p = std::exp(cands_[i].logit - mx);
  if (!(sum > 0)) return;  // every logit is -inf or NaN: nothing to rank by
  const double log_sum = std::log(sum);
  double entropy = 0;
  for (size_t i = 0; i < n_; ++i) {
    cands_[i].p = static_cast<float>(cands_[i].p / sum);
    const double log_p = static_cast<double>(cands_[i].logit - mx) - log_sum;
    if (cands_[i].p > 0.0f) entropy -= cands_[i].p * log_p;
  }
  for (size_t i = 0; i < n_; ++i) {
    const double log_p = static_cast<double>(cands_[i].logit - mx) - log_sum;
    cands_[i].key = static_cast<float>(std::abs(-log_p - entropy));
  }
  auto more_typical = [](const Candidate& a, const Candidate& b) {
    return a.key < b.key || (a.key == b.key && a.id < b.id);
  };
  n_ = select_mass(cands_.data(), n_, typical_p_, /*strict=*/true, more_typical);
  front_is_max_ = false;
}

void Sampler::top_p() {
  if (!(top_p_ < 1.0f)) return;
  // Keep the smallest set of most likely tokens whose mass reaches top_p.
  const float mx = max_logit();
  double sum = 0;
  for (size_t i = 0; i < n_; ++i) sum += cands_[i].p = std::exp(cands_[i].logit - mx);
  if (!(sum > 0)) return;  // every logit is -inf or NaN: nothing to rank by
  n_ = select_mass(cands_.data(), n_, top_p_ * sum, /*strict=*/false, before_by_logit);
  front_is_max_ = false;
}

void Sampler::min_p() {
  if (!(min_p_ > 0.0f)) return;
  // p_i >= min_p * p_max  <=>  logit_i >= max_logit + log(min_p): no softmax needed.
  const size_t best = argmax_index();
  const Candidate top = cands_[best];
  const float threshold = top.logit + std::log(min_p_);
  size_t kept = 0;
  for (size_t i = 0; i < n_; ++i) {
    if (cands_[i].logit >= threshold) cands_[kept++] = cands_[i];
  }
  // Filtering in place keeps the relative order, so a maximum in front stays in front.
  n_ = kept;
  if (n_ == 0) {
    // Only min_p > 1 removes everything; the most likely token always stays.
    cands_[0] = top;
    n_ = 1;
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
  const float inv_t = 1.0f / temperature_;
  double sum = 0;
  for (size_t i = 0; i < n_; ++i) {
    const float w = std::exp((cands_[i].logit - mx) * inv_t);
    cands_[i].p = w;
    sum += w;
  }
  if (!(sum > 0) || !std::isfinite(sum)) return argmax();
  const double u = next_uniform() * sum;
  double cum = 0;
  for (size_t i = 0; i < n_; ++i) {
    cum += cands_[i].p;
    if (u < cum) return cands_[i].id;
  }
  // Rounding can leave u just above the final sum: the last candidate with weight takes it.
  for (size_t i = n_; i-- > 0;) {
    if (cands_[i].p > 0) return cands_[i].id;
  }
  return argmax();
}

}  // namespace corral::sample
