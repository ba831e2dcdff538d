// The generation loop on Karpathy's stories260K against llama2.c's greedy ids: prefix reuse,
// context shift and truncation, cancellation, stop strings, statistics.
#include "runner/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "testdata.h"

namespace corral::runner {
namespace {

std::string model_path() {
  return corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
}

std::vector<int32_t> greedy_bos_ids() {
  std::ifstream in(
      corral::testing::testdata_path("tinystories260k/stories260K.greedy_bos.ids.txt"));
  std::vector<int32_t> ids;
  for (int32_t v; in >> v;) ids.push_back(v);
  return ids;
}

sample::Options greedy(int num_predict) {
  sample::Options o;
  o.temperature = 0;
  o.num_predict = num_predict;
  return o;
}

struct Collected {
  std::string text;
  Stats stats;
};

Collected run(Engine& e, const std::vector<int32_t>& prompt, const sample::Options& o,
              const std::atomic<bool>* cancel = nullptr) {
  Collected c;
  c.stats = e.generate(
      prompt, o, [&](std::string_view s) { c.text += s; }, cancel);
  return c;
}

// One thread: the test machine is shared.
Engine make_engine() { return Engine(model_path(), {.n_threads = 1}); }

TEST(Engine, GreedyFromBosStreamsTheTextOfLlama2csIds) {
  Engine e = make_engine();
  const std::vector<int32_t> ids = greedy_bos_ids();
  ASSERT_EQ(ids.size(), 200u);
  const Collected c = run(e, {ids[0]}, greedy(199));
  const std::vector<int32_t> generated(ids.begin() + 1, ids.end());
  EXPECT_EQ(c.text, e.tokenizer().decode(generated));
  EXPECT_EQ(c.stats.prompt_eval_count, 1);
  EXPECT_EQ(c.stats.eval_count, 199);
  EXPECT_EQ(c.stats.done_reason, "length");
  EXPECT_GT(c.stats.eval_duration.count(), 0);
  EXPECT_GE(c.stats.total_duration, c.stats.prompt_eval_duration + c.stats.eval_duration);
}

TEST(Engine, RepeatedPromptEvaluatesOnlyItsLastTokenAndGivesTheSameText) {
  Engine e = make_engine();
  const std::vector<int32_t> prompt = e.tokenize("Once upon a time");
  ASSERT_EQ(prompt, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  const Collected first = run(e, prompt, greedy(20));
  EXPECT_EQ(first.stats.prompt_eval_count, 5);
  const Collected again = run(e, prompt, greedy(20));
  EXPECT_EQ(again.stats.prompt_eval_count, 1);
  EXPECT_EQ(again.text, first.text);
  // A prompt that extends the cached one evaluates only its new tokens (the cache holds the
  // generated tokens too: these two differ from them).
  std::vector<int32_t> longer = prompt;
  longer.insert(longer.end(), {261, 376});
  const Collected extended = run(e, longer, greedy(5));
  EXPECT_EQ(extended.stats.prompt_eval_count, 2);
}

TEST(Engine, GenerationPastAFullContextShiftsAndGoesOn) {
  Engine e = make_engine();
  sample::Options o = greedy(100);
  o.num_ctx = 32;
  const Collected c = run(e, {1}, o);
  EXPECT_EQ(c.stats.eval_count, 100);
  EXPECT_EQ(c.stats.done_reason, "length");
  // Until the context fills, the text is that of an unlimited context.
  const std::vector<int32_t> ids = greedy_bos_ids();
  const std::string first31 =
      e.tokenizer().decode(std::vector<int32_t>(ids.begin() + 1, ids.begin() + 32));
  EXPECT_EQ(c.text.substr(0, first31.size()), first31);
}

TEST(Engine, NumPredictMinusTwoStopsWhenTheContextIsFull) {
  Engine e = make_engine();
  sample::Options o = greedy(-2);
  o.num_ctx = 16;
  const Collected c = run(e, {1, 403, 407}, o);
  // 16 cells: 3 prompt tokens and 13 generated ones are evaluated, the 14th is sampled last.
  EXPECT_EQ(c.stats.eval_count, 14);
  EXPECT_EQ(c.stats.done_reason, "length");
}

TEST(Engine, PromptLongerThanTheContextKeepsItsStartAndEnd) {
  Engine e = make_engine();
  const std::vector<int32_t> ids = greedy_bos_ids();
  sample::Options o = greedy(3);
  o.num_ctx = 16;
  const Collected c = run(e, std::vector<int32_t>(ids.begin(), ids.begin() + 40), o);
  EXPECT_EQ(c.stats.prompt_eval_count, 15);
  EXPECT_EQ(c.stats.eval_count, 3);
}

TEST(Engine, CancelFlagStopsBetweenTokens) {
  Engine e = make_engine();
  std::atomic<bool> cancel{false};
  int pieces = 0;
  const Stats s = e.generate(
      std::vector<int32_t>{1}, greedy(-1),
      [&](std::string_view) {
        if (++pieces == 10) cancel = true;
      },
      &cancel);
  EXPECT_EQ(s.done_reason, "cancel");
  EXPECT_EQ(pieces, 10);
}

TEST(Engine, CancelBeforeThePrefillEvaluatesNothing) {
  Engine e = make_engine();
  std::atomic<bool> cancel{true};
  std::string text;
  const Stats s = e.generate(
      std::vector<int32_t>{1, 403, 407}, greedy(5), [&](std::string_view p) { text += p; },
      &cancel);
  EXPECT_EQ(s.done_reason, "cancel");
  EXPECT_EQ(s.prompt_eval_count, 0);
  EXPECT_EQ(s.eval_count, 0);
  EXPECT_EQ(text, "");
  // Nothing half-done stays behind: the next run evaluates the whole prompt.
  cancel = false;
  const Stats next = e.generate(
      std::vector<int32_t>{1, 403, 407}, greedy(1), [](std::string_view) {}, &cancel);
  EXPECT_EQ(next.prompt_eval_count, 3);
}

TEST(Engine, StopStringEndsTheTextBeforeIt) {
  Engine e = make_engine();
  sample::Options o = greedy(100);
  o.stop = {"Lily"};
  const Collected c = run(e, {1}, o);
  EXPECT_EQ(c.text, "Once upon a time, there was a little girl named ");
  EXPECT_EQ(c.stats.done_reason, "stop");
}

TEST(Engine, SameSeedSameSampledText) {
  Engine e = make_engine();
  sample::Options o;
  o.temperature = 0.8f;
  o.num_predict = 40;
  o.seed = 1234;
  const std::string a = run(e, {1}, o).text;
  const std::string b = run(e, {1}, o).text;
  EXPECT_EQ(a, b);
  EXPECT_FALSE(a.empty());
  o.seed = 99;
  EXPECT_NE(run(e, {1}, o).text, a);
}

TEST(Engine, LogitsOfEveryPositionMatchLlama2c) {
  Engine e = make_engine();
  const std::vector<int32_t> ids = greedy_bos_ids();
  std::ifstream in(
      corral::testing::testdata_path("tinystories260k/stories260K.greedy_bos.logits16.f32"),
      std::ios::binary);
  std::vector<float> want(16 * 512);
  in.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * 4));
  ASSERT_TRUE(in.good());
  const std::vector<float> got = e.logits(std::vector<int32_t>(ids.begin(), ids.begin() + 16));
  ASSERT_EQ(got.size(), want.size());
  float worst = 0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  EXPECT_LE(worst, 1e-4f);
}

TEST(Engine, RejectsAnEmptyPromptAndOutOfVocabularyTokens) {
  Engine e = make_engine();
  EXPECT_THROW(e.generate(std::vector<int32_t>{}, greedy(1), [](std::string_view) {}),
               std::invalid_argument);
  EXPECT_THROW(e.logits(std::vector<int32_t>{1, 512}), std::invalid_argument);
}

TEST(GoDuration, SpellsDurationsAsGoDoes) {
  using std::chrono::nanoseconds;
  EXPECT_EQ(go_duration(nanoseconds(0)), "0s");
  EXPECT_EQ(go_duration(nanoseconds(999)), "999ns");
  EXPECT_EQ(go_duration(nanoseconds(850000)), "850\xC2\xB5s");
  EXPECT_EQ(go_duration(nanoseconds(1500)), "1.5\xC2\xB5s");
  EXPECT_EQ(go_duration(nanoseconds(12345000)), "12.345ms");
  EXPECT_EQ(go_duration(nanoseconds(1500000000)), "1.5s");
  EXPECT_EQ(go_duration(nanoseconds(62000000000)), "1m2s");
  EXPECT_EQ(go_duration(nanoseconds(3723000000000)), "1h2m3s");
}

TEST(FormatStats, PrintsOllamasVerboseBlock) {
  Stats s;
  s.prompt_eval_count = 5;
  s.prompt_eval_duration = std::chrono::milliseconds(10);
  s.eval_count = 100;
  s.eval_duration = std::chrono::seconds(2);
  s.total_duration = std::chrono::milliseconds(2010);
  EXPECT_EQ(format_stats(s, std::chrono::milliseconds(5)),
            "total duration:       2.015s\n"
            "load duration:        5ms\n"
            "prompt eval count:    5 token(s)\n"
            "prompt eval duration: 10ms\n"
            "prompt eval rate:     500.00 tokens/s\n"
            "eval count:           100 token(s)\n"
            "eval duration:        2s\n"
            "eval rate:            50.00 tokens/s\n");
}

}  // namespace
}  // namespace corral::runner
