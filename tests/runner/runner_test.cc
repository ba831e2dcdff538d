// Continuous batching: sequences that share forward passes give exactly the text each gives
// alone (and that runner::Engine gives), prefixes are reused per slot, cancellation, the queue
// limit, logprobs and embeddings.
#include "runner/runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "backend/cpu/cpu.h"
#include "convert/convert.h"
#include "kvcache/causal.h"
#include "ml/gguf/writer.h"
#include "sample/grammar.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::runner {
namespace {

std::string stories_path() {
  return corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
}

sample::Options greedy(int num_predict) {
  sample::Options o;
  o.temperature = 0;
  o.num_predict = num_predict;
  return o;
}

struct Output {
  std::string text;
  SequenceResult result;
  size_t pieces = 0;
};

Output collect(Sequence& s) {
  Output out;
  Piece p;
  while (s.next(p)) {
    out.text += p.text;
    ++out.pieces;
  }
  out.result = s.result();
  return out;
}

std::string engine_text(Engine& e, const std::vector<int32_t>& prompt, const sample::Options& o,
                        Stats* stats = nullptr) {
  std::string text;
  const Stats s = e.generate(prompt, o, [&](std::string_view p) { text += p; });
  if (stats) *stats = s;
  return text;
}

SequenceRequest request(std::vector<int32_t> prompt, sample::Options o) {
  SequenceRequest r;
  r.prompt = std::move(prompt);
  r.options = std::move(o);
  return r;
}

const std::vector<std::string> kStoryPrompts = {
    "Once upon a time",   "The cat",     "Lily went to the park", "One day",
    "Tom had a red ball", "The sun was", "A little bird",         "Once",
};

// The text of each prompt alone (Engine, one sequence) against the text of all of them
// submitted together to a runner of `parallel` slots.
void expect_batched_equals_alone(const std::string& path, const std::vector<std::string>& texts,
                                 int parallel, int n_threads = 1) {
  Engine engine(path, {.n_threads = 1});
  std::vector<std::vector<int32_t>> prompts;
  std::vector<std::string> alone;
  for (size_t i = 0; i < texts.size(); ++i) {
    prompts.push_back(engine.tokenize(texts[i]));
    alone.push_back(engine_text(engine, prompts.back(), greedy(24 + 5 * static_cast<int>(i))));
  }
  // The most sequences one forward pass served.
  auto widest = std::make_shared<std::atomic<size_t>>(0);
  RunnerOptions ro{.num_parallel = parallel, .n_threads = n_threads};
  ro.on_batch = [widest](const model::Batch& b) {
    std::set<int32_t> seqs(b.seq_ids.begin(), b.seq_ids.end());
    if (seqs.size() > widest->load()) widest->store(seqs.size());
  };
  Runner runner(path, ro);
  std::vector<std::shared_ptr<Sequence>> seqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    seqs.push_back(runner.submit(request(prompts[i], greedy(24 + 5 * static_cast<int>(i)))));
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    const Output out = collect(*seqs[i]);
    EXPECT_EQ(out.text, alone[i]) << "prompt " << i << ": " << texts[i];
    EXPECT_EQ(out.result.stats.done_reason, "length");
    EXPECT_EQ(out.result.stats.eval_count, 24 + 5 * static_cast<int>(i));
  }
  // All were submitted before the first finished: the decode steps of `parallel` of them ran
  // in one graph.
  EXPECT_EQ(widest->load(), std::min(static_cast<size_t>(parallel), texts.size()));
}

TEST(Runner, OneSequenceGivesTheEnginesGreedyTextAndCounters) {
  Engine engine(stories_path(), {.n_threads = 1});
  Runner runner(stories_path(), {.num_parallel = 2, .n_threads = 1});
  const std::vector<int32_t> prompt = engine.tokenize("Once upon a time");
  Stats want;
  const std::string text = engine_text(engine, prompt, greedy(60), &want);
  const Output got = collect(*runner.submit(request(prompt, greedy(60))));
  EXPECT_EQ(got.text, text);
  EXPECT_GT(got.pieces, 10u);
  const Stats& s = got.result.stats;
  EXPECT_EQ(s.prompt_eval_count, 5);
  EXPECT_EQ(s.eval_count, 60);
  EXPECT_EQ(s.done_reason, "length");
  EXPECT_GT(s.eval_duration.count(), 0);
  EXPECT_GE(s.total_duration, s.prompt_eval_duration + s.eval_duration);
  // context: the prompt and the generated tokens.
  ASSERT_EQ(got.result.context.size(), 65u);
  EXPECT_EQ(std::vector<int32_t>(got.result.context.begin(), got.result.context.begin() + 5),
            prompt);
  EXPECT_EQ(engine.tokenizer().decode(
                std::vector<int32_t>(got.result.context.begin() + 5, got.result.context.end())),
            text.substr(0, text.size()));
}

TEST(Runner, EightSimultaneousGreedyStoriesEachGiveTheirTextAlone) {
  expect_batched_equals_alone(stories_path(), kStoryPrompts, 8);
}

// Issue 19's batched decode: four sequences on two threads (the threads split each step's
// products and attention differently than one thread alone does) in a cache where each
// sequence's cells lie far from the others'.
TEST(Runner, FourSimultaneousGreedyStoriesOnTwoThreadsEachGiveTheirTextAlone) {
  expect_batched_equals_alone(
      stories_path(), std::vector<std::string>(kStoryPrompts.begin(), kStoryPrompts.begin() + 4), 4,
      2);
}

TEST(Runner, MoreRequestsThanSlotsWaitAndStillGiveTheirTextAlone) {
  expect_batched_equals_alone(stories_path(), kStoryPrompts, 3);
}

TEST(Runner, EightSimultaneousGreedyQwen2ChatsEachGiveTheirTextAlone) {
  corral::testing::TempDir tmp;
  const std::string gguf = (tmp.path() / "tiny-qwen2.gguf").string();
  convert::ConvertOptions co;
  co.type = "F32";
  co.write.n_threads = 1;
  convert::convert_hf(corral::testing::testdata_path("reference/tiny-qwen2"), gguf, co);
  expect_batched_equals_alone(gguf,
                              {"hello world", "the quick brown fox", "a", "numbers 1 2 3",
                               "tiny qwen", "zebra", "what is this?", "x y z"},
                              8);
}

// Gemma 3's sliding-window layers keep their cells per slot too (tiny-gemma3's window is 8:
// every sequence runs past it).
TEST(Runner, SimultaneousGreedyGemma3SequencesEachGiveTheirTextAlone) {
  corral::testing::TempDir tmp;
  const std::string gguf = (tmp.path() / "tiny-gemma3.gguf").string();
  convert::ConvertOptions co;
  co.type = "F32";
  co.write.n_threads = 1;
  convert::convert_hf(corral::testing::testdata_path("reference/tiny-gemma3"), gguf, co);
  expect_batched_equals_alone(
      gguf, {"Once upon a time there was a little dog", "hello", "the park", "a b c d e f g h i"},
      4);
  // Only the full-attention layer (one of four) grows with the context.
  Runner runner(gguf, {.num_parallel = 2, .n_threads = 1});
  const uint64_t layer_cell = 2 * ml::row_size(ml::DType::F16, 32);  // K and V, one KV head
  EXPECT_EQ(runner.memory_needs().per_cell, layer_cell + sizeof(float) * 512);
}

TEST(Runner, ContextShiftAndNumPredictMinusTwoAsTheEngine) {
  Engine engine(stories_path(), {.n_threads = 1});
  Runner runner(stories_path(), {.num_parallel = 2, .n_threads = 1});
  sample::Options shift = greedy(100);
  shift.num_ctx = 32;
  sample::Options full = greedy(-2);
  full.num_ctx = 16;
  SequenceRequest shifting = request({1}, shift);
  shifting.shift = true;  // the engine (`corral run` in-process) shifts
  auto a = runner.submit(std::move(shifting));
  auto b = runner.submit(request({1, 403, 407}, full));
  const Output oa = collect(*a), ob = collect(*b);
  EXPECT_EQ(oa.text, engine_text(engine, {1}, shift));
  EXPECT_EQ(oa.result.stats.eval_count, 100);
  Stats want;
  EXPECT_EQ(ob.text, engine_text(engine, {1, 403, 407}, full, &want));
  EXPECT_EQ(ob.result.stats.eval_count, want.eval_count);
  EXPECT_EQ(ob.result.stats.done_reason, "length");
}

// Without `shift`, a generation with no num_predict (or one past the context) ends when its
// context is full: a request on a model that never emits its end token cannot run forever.
TEST(Runner, WithoutShiftAGenerationEndsWhenItsContextIsFull) {
  Runner runner(stories_path(), {.num_parallel = 2, .n_threads = 1});
  sample::Options endless = greedy(-1);
  endless.num_ctx = 32;
  endless.stop = {};
  sample::Options past = greedy(1000);
  past.num_ctx = 24;
  auto a = runner.submit(request({1, 403, 407}, endless));
  auto b = runner.submit(request({1}, past));
  const Output oa = collect(*a), ob = collect(*b);
  // Each ends with its last cell filled (the token sampled there is not evaluated), unless the
  // model ended its story first.
  for (const Output* o : {&oa, &ob}) {
    ASSERT_TRUE(o->result.stats.done_reason == "length" || o->result.stats.done_reason == "stop");
  }
  if (oa.result.stats.done_reason == "length") EXPECT_EQ(oa.result.stats.eval_count, 32 - 3 + 1);
  if (ob.result.stats.done_reason == "length") EXPECT_EQ(ob.result.stats.eval_count, 24 - 1 + 1);
  EXPECT_EQ(oa.result.stats.done_reason, "length");
}

// keep_alive 0 and `corral stop` cancel what a model is running, and shutdown cancels everything:
// every sequence, running or queued, ends at its next step.
TEST(Runner, CancelAllEndsRunningAndQueuedSequences) {
  Runner runner(stories_path(), {.num_parallel = 2, .n_threads = 1});
  sample::Options endless = greedy(-1);
  std::vector<std::shared_ptr<Sequence>> seqs;
  for (int i = 0; i < 4; ++i) seqs.push_back(runner.submit(request({1}, endless)));
  Piece p;
  ASSERT_TRUE(seqs[0]->next(p));
  ASSERT_TRUE(seqs[1]->next(p));
  EXPECT_EQ(runner.cancel_all(), 4u);
  for (auto& s : seqs) EXPECT_EQ(s->result().stats.done_reason, "cancel");
  EXPECT_EQ(runner.active(), 0u);
  // The runner goes on serving.
  EXPECT_EQ(collect(*runner.submit(request({1}, greedy(5)))).result.stats.eval_count, 5);
}

TEST(Runner, LongPromptIsTruncatedAsTheEngineDoes) {
  Engine engine(stories_path(), {.n_threads = 1});
  Runner runner(stories_path(), {.num_parallel = 1, .n_threads = 1});
  std::vector<int32_t> prompt = engine.tokenize("Once upon a time there was a cat");
  while (prompt.size() < 40) prompt.push_back(prompt[prompt.size() % 8 + 1]);
  sample::Options o = greedy(5);
  o.num_ctx = 16;
  Stats want;
  const std::string text = engine_text(engine, prompt, o, &want);
  SequenceRequest r = request(prompt, o);
  r.shift = true;  // 15 of 16 cells hold the prompt: the engine shifts to generate 5 tokens
  const Output got = collect(*runner.submit(std::move(r)));
  EXPECT_EQ(got.text, text);
  EXPECT_EQ(got.result.stats.prompt_eval_count, 15);
}

TEST(Runner, NextTurnOfAConversationEvaluatesOnlyItsNewTokens) {
  Runner runner(stories_path(), {.num_parallel = 2, .n_threads = 1});
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  const Output first = collect(*runner.submit(request(prompt, greedy(10))));
  EXPECT_EQ(first.result.stats.prompt_eval_count, 5);
  // Another request in between takes the other slot and leaves the conversation's cells alone.
  const Output other = collect(*runner.submit(request({1, 309}, greedy(10))));
  EXPECT_EQ(other.result.stats.prompt_eval_count, 2);
  std::vector<int32_t> next = first.result.context;
  next.insert(next.end(), {261, 376});
  const Output second = collect(*runner.submit(request(next, greedy(5))));
  // The cache holds the prompt and all but the last generated token.
  EXPECT_EQ(second.result.stats.prompt_eval_count, 3);
  // The same prompt again evaluates only its last token and gives the same text.
  const Output again = collect(*runner.submit(request(prompt, greedy(10))));
  EXPECT_EQ(again.text, first.text);
  EXPECT_LE(again.result.stats.prompt_eval_count, 1);
}

TEST(Runner, CancelEndsOneSequenceAndLeavesTheOthersIntact) {
  Engine engine(stories_path(), {.n_threads = 1});
  Runner runner(stories_path(), {.num_parallel = 3, .n_threads = 1});
  const std::vector<int32_t> p1 = engine.tokenize("The cat"), p2 = engine.tokenize("One day");
  auto endless = runner.submit(request({1}, greedy(-1)));
  auto a = runner.submit(request(p1, greedy(40)));
  Piece piece;
  int pieces = 0;
  while (endless->next(piece)) {
    if (++pieces == 5) endless->cancel();
  }
  const SequenceResult& r = endless->result();
  EXPECT_EQ(r.stats.done_reason, "cancel");
  // The runner is at most kMaxUnread pieces ahead of the reader (a token gives at most one).
  EXPECT_LE(r.stats.eval_count, 5 + static_cast<int>(Sequence::kMaxUnread) + 1);
  auto b = runner.submit(request(p2, greedy(30)));
  EXPECT_EQ(collect(*a).text, engine_text(engine, p1, greedy(40)));
  EXPECT_EQ(collect(*b).text, engine_text(engine, p2, greedy(30)));
  // A request cancelled before it starts ends without running. Three unread endless sequences
  // hold the three slots (each pauses kMaxUnread pieces ahead of its reader), so it waits in
  // the queue until it is cancelled.
  std::vector<std::shared_ptr<Sequence>> holders;
  for (int i = 0; i < 3; ++i) holders.push_back(runner.submit(request({1}, greedy(-1))));
  Piece first;
  for (auto& h : holders) ASSERT_TRUE(h->next(first));  // each has a slot
  auto c = runner.submit(request(p2, greedy(30)));
  c->cancel();
  c->cancel();
  const Output oc = collect(*c);
  EXPECT_EQ(oc.result.stats.done_reason, "cancel");
  EXPECT_EQ(oc.result.stats.eval_count, 0);
  EXPECT_EQ(oc.pieces, 0u);
  for (auto& h : holders) h->cancel();
}

// A reader that falls behind pauses its own sequence only: the runner does not generate (and
// buffer) without limit for a slow client, and the other sequences keep their pace and text.
TEST(Runner, AnUnreadSequencePausesAndTheOthersGoOn) {
  Engine engine(stories_path(), {.n_threads = 1});
  Runner runner(stories_path(), {.num_parallel = 2, .n_threads = 1});
  auto unread = runner.submit(request({1}, greedy(-1)));
  const std::vector<int32_t> p = engine.tokenize("One day");
  // 300 steps in which the unread sequence could have generated 300 tokens.
  EXPECT_EQ(collect(*runner.submit(request(p, greedy(300)))).text,
            engine_text(engine, p, greedy(300)));
  unread->cancel();
  const Output out = collect(*unread);
  EXPECT_EQ(out.result.stats.done_reason, "cancel");
  EXPECT_LE(out.result.stats.eval_count, static_cast<int>(Sequence::kMaxUnread) + 1);
  EXPECT_GE(out.pieces, Sequence::kMaxUnread);
  // Waiting for the result without reading the pieces lets the sequence run to its end.
  auto whole = runner.submit(request({1}, greedy(150)));
  EXPECT_EQ(whole->result().stats.eval_count, 150);
  EXPECT_EQ(whole->result().stats.done_reason, "length");
}

TEST(Runner, DestroyingTheRunnerEndsItsSequences) {
  std::shared_ptr<Sequence> s;
  {
    Runner runner(stories_path(), {.num_parallel = 1, .n_threads = 1});
    s = runner.submit(request({1}, greedy(-1)));
    Piece p;
    ASSERT_TRUE(s->next(p));
  }
  EXPECT_EQ(s->result().stats.done_reason, "cancel");
}

TEST(Runner, RejectsBadRequestsAndAFullQueue) {
  Runner runner(stories_path(), {.num_parallel = 1, .n_threads = 1});
  EXPECT_THROW(runner.submit(request({}, greedy(1))), std::invalid_argument);
  EXPECT_THROW(runner.submit(request({1, 512}, greedy(1))), std::invalid_argument);
  EXPECT_THROW(runner.submit(request({1, -1}, greedy(1))), std::invalid_argument);
  // A request a free slot takes does not wait; one more than the slots and the queue does.
  runner.set_max_queue(0);
  auto busy = runner.submit(request({1}, greedy(-1)));
  Piece piece;
  ASSERT_TRUE(busy->next(piece));
  EXPECT_THROW(runner.submit(request({1}, greedy(1))), QueueFullError);
  busy->cancel();
  EXPECT_EQ(busy->result().stats.done_reason, "cancel");
  runner.set_max_queue(8);
  EXPECT_EQ(collect(*runner.submit(request({1}, greedy(3)))).result.stats.eval_count, 3);
  EXPECT_EQ(runner.active(), 0u);
}

TEST(Runner, ABurstOfSlotsPlusQueueRequestsIsAllAccepted) {
  // The worker is held at its first forward pass: whether or not it has admitted any request
  // yet, 4 slots and a queue of 4 take 8 requests and refuse the 9th.
  std::mutex mu;
  std::condition_variable cv;
  bool go = false;
  Runner runner(stories_path(),
                {.num_parallel = 4, .n_threads = 1, .on_batch = [&](const model::Batch&) {
                   std::unique_lock lock(mu);
                   cv.wait(lock, [&] { return go; });
                 }});
  runner.set_max_queue(4);
  std::vector<std::shared_ptr<Sequence>> burst;
  for (int i = 0; i < 8; ++i) burst.push_back(runner.submit(request({1}, greedy(5))));
  EXPECT_THROW(runner.submit(request({1}, greedy(5))), QueueFullError);
  {
    std::lock_guard lock(mu);
    go = true;
  }
  cv.notify_all();
  for (auto& s : burst) EXPECT_EQ(collect(*s).result.stats.eval_count, 5);
}

TEST(Runner, StopStringEndsTheTextBeforeIt) {
  Runner runner(stories_path(), {.num_parallel = 2, .n_threads = 1});
  sample::Options o = greedy(100);
  o.stop = {"Lily"};
  const Output out = collect(*runner.submit(request({1}, o)));
  EXPECT_EQ(out.text, "Once upon a time, there was a little girl named ");
  EXPECT_EQ(out.result.stats.done_reason, "stop");
}

TEST(Runner, LogprobsAreTheLogSoftmaxOfTheChosenAndTopTokens) {
  Engine engine(stories_path(), {.n_threads = 1});
  Runner runner(stories_path(), {.num_parallel = 1, .n_threads = 1, .cache_dtype = ml::DType::F32});
  SequenceRequest r = request({1, 403, 407}, greedy(6));
  r.top_logprobs = 3;
  auto s = runner.submit(r);
  std::vector<Logprob> lps;
  std::string text;
  Piece p;
  while (s->next(p)) {
    text += p.text;
    lps.insert(lps.end(), p.logprobs.begin(), p.logprobs.end());
  }
  ASSERT_EQ(lps.size(), 6u);
  // The first token's logprob from the engine's logits of the prompt.
  const std::vector<float> logits = engine.logits(std::vector<int32_t>{1, 403, 407});
  const float* last = logits.data() + 2 * 512;
  double z = 0;
  for (int i = 0; i < 512; ++i) z += std::exp(static_cast<double>(last[i]));
  const int32_t best = lps[0].chosen.id;
  EXPECT_NEAR(lps[0].chosen.logprob, last[best] - std::log(z), 1e-4);
  for (const Logprob& lp : lps) {
    ASSERT_EQ(lp.top.size(), 3u);
    // Greedy: the chosen token is the most likely one.
    EXPECT_EQ(lp.top[0].id, lp.chosen.id);
    EXPECT_FLOAT_EQ(lp.top[0].logprob, lp.chosen.logprob);
    EXPECT_GE(lp.top[0].logprob, lp.top[1].logprob);
    EXPECT_GE(lp.top[1].logprob, lp.top[2].logprob);
    EXPECT_LE(lp.chosen.logprob, 0.0f);
    EXPECT_EQ(lp.chosen.token, engine.tokenizer().token_to_piece(lp.chosen.id));
  }
  std::string joined;
  for (const Logprob& lp : lps) joined += lp.chosen.token;
  EXPECT_NE(joined.find(text.substr(1)), std::string::npos);
}

TEST(Runner, AFailingForwardPassFailsItsSequencesAndTheWorkerGoesOn) {
  Engine engine(stories_path(), {.n_threads = 1});
  // Token 499 in a batch breaks it.
  RunnerOptions ro{.num_parallel = 2, .n_threads = 1};
  ro.on_batch = [](const model::Batch& b) {
    for (int32_t t : b.tokens) {
      if (t == 499) throw std::runtime_error("injected failure");
    }
  };
  Runner runner(stories_path(), ro);
  const std::vector<int32_t> prompt = engine.tokenize("Once upon a time");
  // The conversation's cells are cached in one slot; its next turn fails there.
  const Output first = collect(*runner.submit(request(prompt, greedy(8))));
  std::vector<int32_t> poisoned = first.result.context;
  poisoned.push_back(499);
  auto bad = runner.submit(request(poisoned, greedy(8)));
  Piece p;
  try {
    while (bad->next(p)) {
    }
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "injected failure");
  }
  EXPECT_THROW(bad->result(), std::runtime_error);
  // Its cells are dropped, not trusted: the prompt is evaluated again, and the text is still
  // the engine's.
  const Output again = collect(*runner.submit(request(prompt, greedy(8))));
  EXPECT_EQ(again.result.stats.prompt_eval_count, 5);
  EXPECT_EQ(again.text, first.text);
  EXPECT_EQ(again.text, engine_text(engine, prompt, greedy(8)));
  EXPECT_EQ(runner.active(), 0u);
}

TEST(Runner, GrammarConstrainsTheTextAndEndsItWhenComplete) {
  Runner runner(stories_path(), {.num_parallel = 3, .n_threads = 1});
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  SequenceRequest fixed = request(prompt, greedy(50));
  fixed.grammar = sample::Grammar::parse(R"(root ::= "The end." )");
  SequenceRequest choice = request(prompt, greedy(50));
  choice.grammar = sample::Grammar::parse(R"(root ::= ("yes" | "no") "!" )");
  // Beside them, a free sequence keeps its own text.
  auto free = runner.submit(request(prompt, greedy(20)));
  auto a = runner.submit(fixed);
  auto b = runner.submit(choice);
  const Output oa = collect(*a), ob = collect(*b);
  EXPECT_EQ(oa.text, "The end.");
  EXPECT_EQ(oa.result.stats.done_reason, "stop");
  EXPECT_TRUE(ob.text == "yes!" || ob.text == "no!") << ob.text;
  Engine engine(stories_path(), {.n_threads = 1});
  EXPECT_EQ(collect(*free).text, engine_text(engine, prompt, greedy(20)));
}

// The final hidden state of the last token after the output norm, from a forward pass of its
// own with an f32 cache, L2-normalized.
std::vector<float> direct_last_embedding(const Runner& r, const std::vector<int32_t>& tokens) {
  const model::Model& m = r.model();
  auto cache = m.make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  model::Batch batch;
  for (size_t i = 0; i < tokens.size(); ++i) {
    batch.add(tokens[i], static_cast<int32_t>(i), 0, i + 1 == tokens.size());
  }
  auto backend = backend::cpu::make_backend({.n_threads = 1});
  ml::Executor exec({backend.get()});
  ml::Graph g;
  ml::Tensor out =
      const_cast<model::Model&>(m).forward(g, batch, cache, model::Output::kEmbeddings);
  exec.compute(g, {out});
  const auto* h = static_cast<const float*>(out.data());
  std::vector<float> e(h, h + m.config().n_embd);
  double norm = 0;
  for (float v : e) norm += static_cast<double>(v) * v;
  for (float& v : e) v = static_cast<float>(v / std::sqrt(norm));
  return e;
}

TEST(Runner, EmbeddingIsTheNormalizedLastHiddenStateBesideGeneration) {
  Runner runner(stories_path(), {.num_parallel = 3, .n_threads = 1, .cache_dtype = ml::DType::F32});
  EXPECT_EQ(runner.pooling(), Pooling::kLast);
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 309};
  auto gen = runner.submit(request({1}, greedy(20)));
  SequenceRequest r = request(tokens, {});
  r.embed = true;
  auto emb = runner.submit(r);
  const Output out = collect(*emb);
  const std::vector<float>& e = out.result.embedding;
  const std::vector<float> want = direct_last_embedding(runner, tokens);
  ASSERT_EQ(e.size(), want.size());
  double norm = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    EXPECT_NEAR(e[i], want[i], 1e-5) << i;
    norm += static_cast<double>(e[i]) * e[i];
  }
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_EQ(out.result.stats.prompt_eval_count, 6);
  EXPECT_EQ(out.text, "");
  EXPECT_EQ(collect(*gen).result.stats.eval_count, 20);
}

// stories260K with `llama.pooling_type` = 1 (mean), written beside the test.
std::string mean_pooled_copy(const corral::testing::TempDir& tmp) {
  const ml::gguf::File src = ml::gguf::File::open(stories_path());
  ml::gguf::Writer w(src.metadata());
  w.metadata().set("llama.pooling_type", uint32_t{1});
  for (const auto& t : src.tensors()) {
    w.add_tensor(t.name, t.dtype, std::span<const int64_t>(t.ne.data(), t.n_dims), t.bytes());
  }
  const std::string out = (tmp.path() / "mean.gguf").string();
  w.write(out);
  return out;
}

TEST(Runner, MeanPoolingAveragesEveryTokensHiddenState) {
  corral::testing::TempDir tmp;
  Runner runner(mean_pooled_copy(tmp),
                {.num_parallel = 2, .num_batch = 4, .n_threads = 1, .cache_dtype = ml::DType::F32});
  ASSERT_EQ(runner.pooling(), Pooling::kMean);
  // Longer than num_batch: the mean spans several chunks.
  const std::vector<int32_t> tokens = {1, 403, 407, 261, 378, 309, 290, 400, 261};
  const model::Model& m = runner.model();
  auto cache = m.make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  model::Batch batch;
  for (size_t i = 0; i < tokens.size(); ++i) batch.add(tokens[i], static_cast<int32_t>(i), 0, true);
  auto backend = backend::cpu::make_backend({.n_threads = 1});
  ml::Executor exec({backend.get()});
  ml::Graph g;
  ml::Tensor out =
      const_cast<model::Model&>(m).forward(g, batch, cache, model::Output::kEmbeddings);
  exec.compute(g, {out});
  const auto* h = static_cast<const float*>(out.data());
  const auto n_embd = static_cast<size_t>(m.config().n_embd);
  std::vector<double> mean(n_embd, 0.0);
  for (size_t t = 0; t < tokens.size(); ++t) {
    for (size_t i = 0; i < n_embd; ++i) mean[i] += h[t * n_embd + i] / tokens.size();
  }
  double norm = 0;
  for (double v : mean) norm += v * v;
  for (int round = 0; round < 2; ++round) {  // the second reuses nothing: every state is needed
    SequenceRequest r = request(tokens, {});
    r.embed = true;
    const Output got = collect(*runner.submit(r));
    ASSERT_EQ(got.result.embedding.size(), n_embd);
    for (size_t i = 0; i < n_embd; ++i) {
      EXPECT_NEAR(got.result.embedding[i], mean[i] / std::sqrt(norm), 1e-5) << i;
    }
    EXPECT_EQ(got.result.stats.prompt_eval_count, 9);
  }
}

TEST(CausalSeqCells, EachSequenceTakesCellsOfItsOwnRange) {
  kvcache::Causal cache(1, 1, 4, 4, {.num_ctx = 8, .dtype = ml::DType::F32, .seq_cells = 4});
  ml::Graph g;
  const std::vector<int32_t> pos = {0, 0, 1, 1, 2};
  const std::vector<int32_t> seq = {1, 0, 1, 0, 1};
  cache.start_forward(g, pos, seq);
  EXPECT_EQ(std::vector<int32_t>(cache.batch_cells().begin(), cache.batch_cells().end()),
            (std::vector<int32_t>{4, 0, 5, 1, 6}));
  // Full range: a fifth token of sequence 1 does not spill into sequence 0's cells.
  ml::Graph g2;
  const std::vector<int32_t> pos2 = {3, 4};
  const std::vector<int32_t> seq2 = {1, 1};
  EXPECT_THROW(cache.start_forward(g2, pos2, seq2), kvcache::FullError);
  EXPECT_THROW(cache.start_forward(g2, std::vector<int32_t>{0}, std::vector<int32_t>{2}),
               std::invalid_argument);
}

}  // namespace
}  // namespace corral::runner
