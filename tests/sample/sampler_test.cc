#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "sample/samplers.h"

namespace corral::sample {
namespace {

// Options with every truncation step and penalty off: the draw is from softmax(logits / T).
Options plain(float temperature, int64_t seed = 1) {
  Options o;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.typical_p = 1.0f;
  o.repeat_penalty = 1.0f;
  o.temperature = temperature;
  o.seed = seed;
  return o;
}

std::vector<float> logits_of(const std::vector<double>& probs) {
  std::vector<float> out;
  for (double p : probs) out.push_back(static_cast<float>(std::log(p)));
  return out;
}

std::set<int32_t> survivors(const Sampler& s) {
  std::set<int32_t> ids;
  for (const auto& c : s.last_candidates()) ids.insert(c.id);
  return ids;
}

std::vector<float> random_logits(int n, uint32_t seed, float scale = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> out(n);
  for (float& x : out) x = dist(rng);
  return out;
}

TEST(Sampler, GreedyTakesArgmaxWithTiesToLowestId) {
  Sampler s(plain(0.0f), 6);
  const std::vector<float> logits = {1.0f, 3.0f, -2.0f, 3.0f, 0.5f, 3.0f};
  EXPECT_EQ(s.sample(logits, {}), 1);
  const std::vector<float> negative = {-5.0f, -4.0f, -1.0f, -1.0f, -9.0f, -1.5f};
  EXPECT_EQ(s.sample(negative, {}), 2);
}

// Greedy over vocabularies of every length around the width the maximum is taken in: the first
// largest logit, wherever it lies (the tail included), NaN never, 0 when nothing is above -inf.
TEST(Sampler, GreedyOnAnyVocabularyIsTheFirstMaximumAndNeverNan) {
  const auto first_max = [](const std::vector<float>& v) {
    int32_t best = 0;
    float best_logit = -INFINITY;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] > best_logit) {
        best_logit = v[i];
        best = static_cast<int32_t>(i);
      }
    }
    return best;
  };
  for (int n : {1, 15, 16, 17, 31, 33, 100, 1000, 32001}) {
    Sampler s(plain(0.0f), n);
    for (uint32_t seed = 0; seed < 8; ++seed) {
      std::vector<float> v = random_logits(n, seed);
      std::mt19937 rng(seed);
      const auto at = [&] { return static_cast<size_t>(rng() % static_cast<uint32_t>(n)); };
      if (seed % 2 == 1) v[at()] = NAN;
      if (seed % 4 == 2) v[static_cast<size_t>(n - 1)] = 100.0f;  // in the tail
      if (seed % 4 == 3) v[at()] = v[at()] = 50.0f;               // a tie, maybe across lanes
      EXPECT_EQ(s.sample(v, {}), first_max(v)) << "n=" << n << " seed=" << seed;
    }
    std::vector<float> hidden(static_cast<size_t>(n), -INFINITY);
    hidden[static_cast<size_t>(n / 2)] = NAN;
    EXPECT_EQ(s.sample(hidden, {}), 0) << "n=" << n;
  }
}

TEST(Sampler, TopKOneEqualsGreedyForEverySeedAndTemperature) {
  for (uint32_t trial = 0; trial < 50; ++trial) {
    std::vector<float> logits = random_logits(1000, trial);
    // Plant ties at the maximum in half of the trials.
    if (trial % 2 == 0) {
      const float mx = *std::max_element(logits.begin(), logits.end());
      logits[700] = mx;
      logits[3] = mx;
    }
    Sampler greedy(plain(0.0f), 1000);
    Options o = plain(0.5f + trial * 0.1f, trial);
    o.top_k = 1;
    Sampler k1(o, 1000);
    const int32_t expected = greedy.sample(logits, {});
    for (int draw = 0; draw < 5; ++draw) EXPECT_EQ(k1.sample(logits, {}), expected);
  }
}

TEST(Sampler, TopKKeepsExactlyTheKLargest) {
  const std::vector<float> logits = random_logits(500, 7);
  Options o = plain(1.0f);
  o.top_k = 17;
  Sampler s(o, 500);
  s.sample(logits, {});
  std::vector<int32_t> order(500);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  EXPECT_EQ(survivors(s), std::set<int32_t>(order.begin(), order.begin() + 17));
}

TEST(Sampler, MinPRemovesExactlyTokensBelowFractionOfMax) {
  // p_max = 0.4 and min_p = 0.25: the threshold is 0.1. Tokens at 0.11 and 0.1005 stay, those at
  // 0.0995 and 0.05 go.
  const std::vector<double> probs = {0.05, 0.4, 0.11, 0.0995, 0.1005, 0.2395, 0.0005};
  Options o = plain(1.0f);
  o.min_p = 0.25f;
  Sampler s(o, 7);
  s.sample(logits_of(probs), {});
  EXPECT_EQ(survivors(s), (std::set<int32_t>{1, 2, 4, 5}));

  // The same holds on a large random vocabulary, checked against the definition in doubles.
  const std::vector<float> logits = random_logits(5000, 11, 2.0f);
  for (float min_p : {0.01f, 0.05f, 0.3f, 0.9f}) {
    Options big = plain(1.0f);
    big.min_p = min_p;
    Sampler sb(big, 5000);
    sb.sample(logits, {});
    const double mx = *std::max_element(logits.begin(), logits.end());
    std::set<int32_t> expected;
    for (int32_t i = 0; i < 5000; ++i) {
      // p_i / p_max = exp(l_i - l_max), independent of the normalization.
      if (std::exp(logits[i] - mx) >= min_p) expected.insert(i);
    }
    EXPECT_EQ(survivors(sb), expected) << "min_p " << min_p;
  }
}

TEST(Sampler, TopPKeepsSmallestSetReachingTheMass) {
  const std::vector<double> probs = {0.05, 0.3, 0.02, 0.25, 0.18, 0.12, 0.08};
  // Sorted: 0.3 (1), 0.25 (3), 0.18 (4), 0.12 (5), 0.08 (6), 0.05 (0), 0.02 (2).
  // Cumulative: 0.3, 0.55, 0.73, 0.85, 0.93, 0.98, 1.0.
  const std::vector<std::pair<float, std::set<int32_t>>> cases = {
      {0.1f, {1}},           {0.5f, {1, 3}},          {0.6f, {1, 3, 4}},
      {0.84f, {1, 3, 4, 5}}, {0.9f, {1, 3, 4, 5, 6}}, {0.99f, {0, 1, 2, 3, 4, 5, 6}},
  };
  for (const auto& [top_p, expected] : cases) {
    Options o = plain(1.0f);
    o.top_p = top_p;
    Sampler s(o, 7);
    s.sample(logits_of(probs), {});
    EXPECT_EQ(survivors(s), expected) << "top_p " << top_p;
  }
}

// Logits on a grid of 0.25, so that many tokens tie and the cut falls inside a run of equal
// logits: the lower ids of the run must be the ones kept.
std::vector<float> tied_logits(int n, uint32_t seed) {
  std::vector<float> logits = random_logits(n, seed, 1.0f);
  for (float& l : logits) l = std::round(l * 4.0f) / 4.0f;
  return logits;
}

TEST(Sampler, TopPOnLargeVocabularyMatchesDefinitionWithTiesToLowerIds) {
  const std::vector<float> logits = tied_logits(20000, 5);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l));
  for (float top_p : {0.3f, 0.8f, 0.95f}) {
    size_t n = 0;
    double cum = 0;
    while (cum < top_p) cum += std::exp(static_cast<double>(logits[order[n++]])) / sum;
    // The cut is inside a run of ties, not at its end.
    ASSERT_EQ(logits[order[n - 1]], logits[order[n]]);
    Options o = plain(1.0f);
    o.top_p = top_p;
    Sampler s(o, static_cast<int32_t>(logits.size()));
    s.sample(logits, {});
    EXPECT_EQ(survivors(s), std::set<int32_t>(order.begin(), order.begin() + n)) << top_p;
  }
}

TEST(Sampler, TypicalPOnLargeVocabularyMatchesDefinition) {
  const std::vector<float> logits = tied_logits(20000, 8);
  double sum = 0;
  for (float l : logits) sum += std::exp(static_cast<double>(l));
  std::vector<double> p(logits.size()), score(logits.size());
  double entropy = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    p[i] = std::exp(static_cast<double>(logits[i])) / sum;
    entropy -= p[i] * std::log(p[i]);
  }
  for (size_t i = 0; i < p.size(); ++i) score[i] = std::abs(-std::log(p[i]) - entropy);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return score[a] < score[b]; });
  for (float typical_p : {0.2f, 0.7f}) {
    size_t n = 0;
    double cum = 0;
    while (!(cum > typical_p)) cum += p[order[n++]];
    Options o = plain(1.0f);
    o.typical_p = typical_p;
    Sampler s(o, static_cast<int32_t>(logits.size()));
    s.sample(logits, {});
    EXPECT_EQ(survivors(s), std::set<int32_t>(order.begin(), order.begin() + n)) << typical_p;
    EXPECT_GT(n, 1000u);
  }
}

TEST(Sampler, TypicalPKeepsTokensNearTheEntropyEvenDroppingTheMostLikely) {
  // H = -(0.4 ln 0.4 + 4 * 0.15 ln 0.15) = 1.505 nats. Surprisal of 0.4 is 0.916 (|.-H| = 0.589);
  // of 0.15 it is 1.897 (|.-H| = 0.392). The 0.15 tokens are the typical ones: their mass,
  // in steps of 0.15, first exceeds 0.5 with all four, and the 0.4 token is left out.
  const std::vector<double> probs = {0.15, 0.15, 0.4, 0.15, 0.15};
  Options o = plain(1.0f);
  o.typical_p = 0.5f;
  Sampler s(o, 5);
  for (int i = 0; i < 200; ++i) EXPECT_NE(s.sample(logits_of(probs), {}), 2);
  EXPECT_EQ(survivors(s), (std::set<int32_t>{0, 1, 3, 4}));

  o.typical_p = 0.95f;  // 0.6 is not enough, the 0.4 token completes the mass
  Sampler all(o, 5);
  all.sample(logits_of(probs), {});
  EXPECT_EQ(survivors(all), (std::set<int32_t>{0, 1, 2, 3, 4}));

  // A peaked distribution: H is small, so the top token is typical and rare ones are not.
  const std::vector<double> peaked = {0.9, 0.05, 0.03, 0.02};
  o.typical_p = 0.5f;
  Sampler ps(o, 4);
  ps.sample(logits_of(peaked), {});
  EXPECT_EQ(survivors(ps), (std::set<int32_t>{0}));
}

TEST(Sampler, PenaltiesChangeExactlyTheRepeatedLogitsInTheWindow) {
  const std::vector<float> logits = {2.0f, -1.0f, 0.5f, -3.0f, 4.0f, 0.0f, 1.0f, -0.5f};
  // Window of 5: tokens 3, 1, 3, 3, 5 (the leading 0 and 4 fall outside).
  const std::vector<int32_t> history = {0, 4, 3, 1, 3, 3, 5};
  Options o = plain(1.0f);
  o.repeat_last_n = 5;
  o.repeat_penalty = 1.5f;
  o.presence_penalty = 0.25f;
  o.frequency_penalty = 0.5f;
  Sampler s(o, 8);
  s.sample(logits, history);
  std::vector<float> got(8, NAN);
  for (const auto& c : s.last_candidates()) got[c.id] = c.logit;

  std::vector<float> expected = logits;
  expected[3] = -3.0f * 1.5f - (3 * 0.5f + 0.25f);  // negative: multiplied; seen 3 times
  expected[1] = -1.0f * 1.5f - (1 * 0.5f + 0.25f);
  expected[5] = 0.0f * 1.5f - (1 * 0.5f + 0.25f);  // zero counts as non-positive
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(got[i], expected[i]) << "token " << i;

  // A positive logit is divided.
  const std::vector<int32_t> recent = {6, 6};
  s.sample(logits, recent);
  for (const auto& c : s.last_candidates()) {
    const float want = c.id == 6 ? 1.0f / 1.5f - (2 * 0.5f + 0.25f) : logits[c.id];
    EXPECT_FLOAT_EQ(c.logit, want) << "token " << c.id;
  }
}

TEST(Sampler, RepeatLastNZeroDisablesAndMinusOneMeansNumCtx) {
  const std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<int32_t> history = {0, 1, 2, 3, 3};
  Options o = plain(1.0f);
  o.repeat_penalty = 2.0f;
  o.repeat_last_n = 0;
  Sampler off(o, 4);
  off.sample(logits, history);
  for (const auto& c : off.last_candidates()) EXPECT_EQ(c.logit, 1.0f);

  o.repeat_last_n = -1;
  o.num_ctx = 3;  // the window is the last 3 tokens: 2, 3, 3
  Sampler ctx(o, 4);
  ctx.sample(logits, history);
  for (const auto& c : ctx.last_candidates()) {
    EXPECT_EQ(c.logit, c.id >= 2 ? 0.5f : 1.0f) << "token " << c.id;
  }

  // Ids outside the vocabulary (corrupt history) are ignored, not read out of bounds.
  const std::vector<int32_t> bad = {-1, 99, 0};
  ctx.sample(logits, bad);
  for (const auto& c : ctx.last_candidates()) EXPECT_EQ(c.logit, c.id == 0 ? 0.5f : 1.0f);
}

TEST(Sampler, FixedSeedReproducesAndDifferentSeedsDiffer) {
  const std::vector<float> logits = random_logits(256, 3, 1.0f);
  auto run = [&](int64_t seed) {
    Options o;  // Ollama's defaults: top_k 40, top_p 0.9, temperature 0.8
    o.seed = seed;
    o.repeat_penalty = 1.1f;
    Sampler s(o, 256);
    std::vector<int32_t> out;
    for (int i = 0; i < 200; ++i) out.push_back(s.sample(logits, out));
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
  EXPECT_NE(run(0), run(1));
  // seed -1: a fresh random seed each time (two equal 200-token runs would be a 1e-100 event).
  EXPECT_NE(run(-1), run(-1));

  Options o = plain(1.0f, 9);
  Sampler s(o, 256);
  std::vector<int32_t> first;
  for (int i = 0; i < 50; ++i) first.push_back(s.sample(logits, {}));
  s.reseed(9);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(logits, {}), first[i]);
}

// Pearson's chi-square of `draws` samples against the expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& probs, int draws) {
  double chi2 = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    const double e = probs[i] * draws;
    chi2 += (counts[i] - e) * (counts[i] - e) / e;
  }
  return chi2;
}

std::vector<double> softmax(const std::vector<float>& logits, double t) {
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp(logits[i] / t);
  for (double& x : p) x /= sum;
  return p;
}

TEST(Sampler, DrawsFollowSoftmaxOfLogitsOverTemperature) {
  const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -1.0f, 1.5f, 0.7f};
  constexpr int kDraws = 200000;
  // 7 degrees of freedom: P(chi2 > 40) is below 1e-6 for a correct sampler, while a wrong
  // temperature (0.7 vs 0.8) gives a chi2 in the thousands at this sample size.
  for (float t : {0.5f, 1.0f, 1.7f}) {
    Sampler s(plain(t, 1234), 8);
    std::vector<int> counts(8, 0);
    for (int i = 0; i < kDraws; ++i) ++counts[s.sample(logits, {})];
    EXPECT_LT(chi_square(counts, softmax(logits, t), kDraws), 40.0) << "T " << t;
    EXPECT_GT(chi_square(counts, softmax(logits, t * 1.15), kDraws), 200.0) << "T " << t;
  }
}

TEST(Sampler, TruncationRenormalizesAndTemperatureAppliesAfterIt) {
  // top_k = 3 keeps tokens 3, 6 and 0; the draw is softmax(logit / T) over those three.
  const std::vector<float> logits = {1.0f, 0.2f, -0.5f, 2.0f, 0.0f, -1.0f, 1.5f, 0.7f};
  Options o = plain(2.0f, 77);
  o.top_k = 3;
  Sampler s(o, 8);
  constexpr int kDraws = 100000;
  std::vector<int> counts(8, 0);
  for (int i = 0; i < kDraws; ++i) ++counts[s.sample(logits, {})];
  const std::vector<double> kept = softmax({1.0f, 2.0f, 1.5f}, 2.0);
  EXPECT_EQ(counts[1] + counts[2] + counts[4] + counts[5] + counts[7], 0);
  // 2 degrees of freedom: P(chi2 > 28) < 1e-6.
  EXPECT_LT(chi_square({counts[0], counts[3], counts[6]}, kept, kDraws), 28.0);
}

TEST(Sampler, ChainOnLargeVocabularyAlwaysReturnsAValidSurvivor) {
  const int32_t n = 32000;
  std::vector<float> logits = random_logits(n, 21, 4.0f);
  logits[5] = -INFINITY;  // masked, e.g. by a grammar
  Options o;
  o.seed = 5;
  o.typical_p = 0.9f;
  o.min_p = 0.05f;
  o.repeat_penalty = 1.2f;
  o.top_k = 100;
  Sampler s(o, n);
  std::vector<int32_t> history;
  for (int i = 0; i < 100; ++i) {
    const int32_t t = s.sample(logits, history);
    ASSERT_GE(t, 0);
    ASSERT_LT(t, n);
    ASSERT_NE(t, 5);
    ASSERT_TRUE(survivors(s).count(t));
    history.push_back(t);
  }
}

}  // namespace
}  // namespace corral::sample
