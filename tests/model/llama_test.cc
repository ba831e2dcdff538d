// The llama architecture against llama2.c's own outputs for Karpathy's stories260K, converted to
// GGUF by llama.cpp (Q/K permuted, interleaved-pair RoPE).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "ml/gguf/reader.h"
#include "model/harness.h"

namespace corral::model {
namespace {

using testing::max_abs_diff;
using testing::Runner;

constexpr int64_t kVocab = 512;

std::string fixture(const std::string& name) {
  return corral::testing::testdata_path("tinystories260k/" + name);
}

std::vector<int32_t> greedy_bos_ids() {
  return testing::parse_ids(testing::read_text(fixture("stories260K.greedy_bos.ids.txt")));
}

// The line after `label:` in prompt_once.ids.txt.
std::vector<int32_t> prompt_once(const std::string& label) {
  std::istringstream in(testing::read_text(fixture("stories260K.prompt_once.ids.txt")));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(label + ":", 0) == 0) return testing::parse_ids(line.substr(label.size() + 1));
  }
  ADD_FAILURE() << "no '" << label << ":' line in prompt_once.ids.txt";
  return {};
}

// llama2.c's logits for positions 0..15 of the BOS-started greedy run, [16][512].
std::vector<float> llama2c_logits() {
  const std::string bytes = testing::read_text(fixture("stories260K.greedy_bos.logits16.f32"));
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

TEST(LlamaStories, BindsEveryTensorWithNoneLeftOver) {
  for (const char* name : {"stories260K-f32.gguf", "stories260K-f16.gguf"}) {
    const auto file = ml::gguf::File::open(fixture(name));
    const auto m = load(file);
    EXPECT_TRUE(m->unused_tensors().empty()) << name << ": " << m->unused_tensors().front();
    const Config& c = m->config();
    EXPECT_EQ(c.architecture, "llama");
    EXPECT_EQ(c.n_layer, 5);
    EXPECT_EQ(c.n_embd, 64);
    EXPECT_EQ(c.n_head, 8);
    EXPECT_EQ(c.n_head_kv, 4);
    EXPECT_EQ(c.head_dim_k, 8);
    EXPECT_EQ(c.n_vocab, kVocab);
    EXPECT_EQ(c.n_ctx_train, 512);
  }
}

class LlamaStoriesOn : public testing::OnBackend {};

// One prefill of the first 16 ids with logits at every position, against llama2.c.
void expect_prefill_matches(const std::string& backend, const char* file_name, ml::DType cache_type,
                            float tolerance) {
  const auto file = ml::gguf::File::open(fixture(file_name));
  const auto m = load(file);
  auto cache = m->make_cache({.num_ctx = 64, .dtype = cache_type});
  const std::vector<int32_t> ids = greedy_bos_ids();
  const std::vector<float> want = llama2c_logits();
  ASSERT_EQ(want.size(), 16u * kVocab);
  Batch b;
  for (int32_t i = 0; i < 16; ++i) b.add(ids[i], i, 0, true);
  Runner r(backend);
  const std::vector<float> got = r.logits(*m, b, cache);
  ASSERT_EQ(got.size(), want.size());
  for (int pos = 0; pos < 16; ++pos) {
    EXPECT_LE(max_abs_diff(got.data() + pos * kVocab, want.data() + pos * kVocab, kVocab),
              tolerance)
        << file_name << " position " << pos;
  }
}

TEST_P(LlamaStoriesOn, PrefillLogitsMatchLlama2cWithF32Cache) {
  expect_prefill_matches(GetParam(), "stories260K-f32.gguf", ml::DType::F32, 1e-4f);
}

TEST_P(LlamaStoriesOn, PrefillLogitsOfF16FileAndCacheMatchLlama2cWithin3e2) {
  expect_prefill_matches(GetParam(), "stories260K-f16.gguf", ml::DType::F16, 3e-2f);
}

TEST_P(LlamaStoriesOn, GreedyFromBosReproducesLlama2csTwoHundredIds) {
  const auto file = ml::gguf::File::open(fixture("stories260K-f32.gguf"));
  const auto m = load(file);
  auto cache = m->make_cache({.num_ctx = 256, .dtype = ml::DType::F32});
  const std::vector<int32_t> want = greedy_bos_ids();
  ASSERT_EQ(want.size(), 200u);
  Runner r(GetParam());
  std::vector<int32_t> got = {want[0]};
  const std::vector<int32_t> more = testing::greedy(r, *m, cache, got, 199);
  got.insert(got.end(), more.begin(), more.end());
  EXPECT_EQ(got, want);
}

TEST_P(LlamaStoriesOn, OnceUponATimeContinuesGreedilyWithF16Cache) {
  const auto file = ml::gguf::File::open(fixture("stories260K-f32.gguf"));
  const auto m = load(file);
  auto cache = m->make_cache({.num_ctx = 128});
  const std::vector<int32_t> prompt = prompt_once("prompt");
  ASSERT_EQ(prompt, (std::vector<int32_t>{1, 403, 407, 261, 378}));
  const std::vector<int32_t> want = prompt_once("greedy");
  ASSERT_EQ(want.size(), 64u);
  Runner r(GetParam());
  EXPECT_EQ(testing::greedy(r, *m, cache, prompt, 64), want);
}

// Each token decoded alone against the cache gets the logits one prefill of the whole
// sequence gives it; two sequences of different lengths share each decode batch.
TEST_P(LlamaStoriesOn, CachedDecodingOfTwoSequencesEqualsTheirPrefills) {
  const auto file = ml::gguf::File::open(fixture("stories260K-f32.gguf"));
  const auto m = load(file);
  const std::vector<int32_t> ids = greedy_bos_ids();
  const std::vector<int32_t> a(ids.begin(), ids.begin() + 40);
  const std::vector<int32_t> b(ids.begin() + 60, ids.begin() + 85);
  Runner r(GetParam());

  auto prefill = [&](const std::vector<int32_t>& seq) {
    auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
    Batch batch;
    for (size_t i = 0; i < seq.size(); ++i) batch.add(seq[i], static_cast<int32_t>(i), 0, true);
    return r.logits(*m, batch, cache);
  };
  const std::vector<float> want_a = prefill(a);
  const std::vector<float> want_b = prefill(b);

  // a's first 10 tokens, b's first 3 as one batch; then one token of each per step.
  auto cache = m->make_cache({.num_ctx = 128, .dtype = ml::DType::F32});
  Batch batch;
  for (int32_t i = 0; i < 10; ++i) batch.add(a[i], i, 7, true);
  for (int32_t i = 0; i < 3; ++i) batch.add(b[i], i, 2, true);
  std::vector<float> got = r.logits(*m, batch, cache);
  for (int32_t i = 0; i < 10; ++i) {
    EXPECT_LE(max_abs_diff(&got[i * kVocab], &want_a[i * kVocab], kVocab), 1e-4f) << "a " << i;
  }
  for (int32_t i = 0; i < 3; ++i) {
    EXPECT_LE(max_abs_diff(&got[(10 + i) * kVocab], &want_b[i * kVocab], kVocab), 1e-4f)
        << "b " << i;
  }
  for (int32_t step = 0; 10 + step < 40; ++step) {
    batch.clear();
    const int32_t pa = 10 + step, pb = 3 + step;
    const bool with_b = pb < static_cast<int32_t>(b.size());
    if (with_b) batch.add(b[pb], pb, 2, true);  // b first: cells interleave in both orders
    batch.add(a[pa], pa, 7, true);
    got = r.logits(*m, batch, cache);
    const float* got_a = &got[(with_b ? 1 : 0) * kVocab];
    EXPECT_LE(max_abs_diff(got_a, &want_a[pa * kVocab], kVocab), 1e-4f) << "a " << pa;
    if (with_b) {
      EXPECT_LE(max_abs_diff(&got[0], &want_b[pb * kVocab], kVocab), 1e-4f) << "b " << pb;
    }
  }
}

// A sequence that shares another's cached prefix continues exactly as if it had computed it.
TEST_P(LlamaStoriesOn, SharedPrefixCellsServeASecondSequence) {
  const auto file = ml::gguf::File::open(fixture("stories260K-f32.gguf"));
  const auto m = load(file);
  const std::vector<int32_t> ids = greedy_bos_ids();
  Runner r(GetParam());
  auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  Batch batch;
  for (int32_t i = 0; i < 12; ++i) batch.add(ids[i], i, 0, false);
  batch.outputs = {11};
  r.logits(*m, batch, cache);
  cache.copy_prefix(0, 1, 8);
  // Sequence 1 diverges after 8 tokens: its positions 8..11 hold other tokens.
  const std::vector<int32_t> tail = {ids[30], ids[31], ids[32], ids[33]};
  batch.clear();
  for (int32_t i = 0; i < 4; ++i) batch.add(tail[i], 8 + i, 1, i == 3);
  const std::vector<float> got = r.logits(*m, batch, cache);
  EXPECT_EQ(cache.used_cells(), 16);

  auto fresh = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  batch.clear();
  for (int32_t i = 0; i < 8; ++i) batch.add(ids[i], i, 0, false);
  for (int32_t i = 0; i < 4; ++i) batch.add(tail[i], 8 + i, 0, i == 3);
  const std::vector<float> want = r.logits(*m, batch, fresh);
  EXPECT_LE(max_abs_diff(got.data(), want.data(), kVocab), 1e-4f);
}

// RoPE makes attention depend on position differences only. So after a context shift that keeps
// nothing at the front, the re-rotated keys must give the next token the logits it gets when the
// same oldest half is merely removed and the positions are left as they were.
TEST_P(LlamaStoriesOn, ContextShiftReRotatesKeysToTheirNewPositions) {
  const auto file = ml::gguf::File::open(fixture("stories260K-f32.gguf"));
  const auto m = load(file);
  const std::vector<int32_t> ids = greedy_bos_ids();
  Runner r(GetParam());
  auto prefilled = [&](kvcache::Causal& cache) {
    Batch batch;
    for (int32_t i = 0; i < 32; ++i) batch.add(ids[i], i, 0, i == 31);
    r.logits(*m, batch, cache);
  };
  auto next = [&](kvcache::Causal& cache, int32_t pos) {
    Batch batch;
    batch.add(ids[32], pos, 0, true);
    return r.logits(*m, batch, cache);
  };
  const auto rotate = [&](ml::Tensor k, ml::Tensor d, int layer) { return m->shift(k, d, layer); };

  auto shifted = m->make_cache({.num_ctx = 32, .dtype = ml::DType::F32, .pad = 8});
  prefilled(shifted);
  EXPECT_THROW(next(shifted, 32), kvcache::FullError);
  EXPECT_EQ(shifted.shift(r.executor(), 0, 0, rotate), 16);
  EXPECT_EQ(shifted.next_position(0), 16);
  EXPECT_EQ(shifted.used_cells(), 16);
  const std::vector<float> got = next(shifted, 16);

  auto removed = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  prefilled(removed);
  removed.remove(0, 0, 16);
  const std::vector<float> want = next(removed, 32);
  EXPECT_LE(max_abs_diff(got.data(), want.data(), kVocab), 1e-4f);
  // Not a vacuous match: without the re-rotation the logits differ.
  auto unrotated = m->make_cache({.num_ctx = 32, .dtype = ml::DType::F32, .pad = 8});
  prefilled(unrotated);
  unrotated.shift(r.executor(), 0, 0, [](ml::Tensor k, ml::Tensor, int) { return k; });
  const std::vector<float> wrong = next(unrotated, 16);
  EXPECT_GT(max_abs_diff(wrong.data(), want.data(), kVocab), 1e-2f);
}

// The first num_keep positions stay; half of the rest (the oldest) go; later ones move down.
TEST_P(LlamaStoriesOn, ContextShiftKeepsThePrefixAndDropsHalfOfTheRest) {
  const auto file = ml::gguf::File::open(fixture("stories260K-f32.gguf"));
  const auto m = load(file);
  const std::vector<int32_t> ids = greedy_bos_ids();
  Runner r(GetParam());
  auto cache = m->make_cache({.num_ctx = 32, .dtype = ml::DType::F32});
  Batch batch;
  for (int32_t i = 0; i < 32; ++i) batch.add(ids[i], i, 0, i == 31);
  r.logits(*m, batch, cache);
  const int32_t dropped =
      cache.shift(r.executor(), 0, 4,
                  [&](ml::Tensor k, ml::Tensor d, int layer) { return m->shift(k, d, layer); });
  EXPECT_EQ(dropped, 14);  // (32 - 4) / 2
  EXPECT_EQ(cache.next_position(0), 18);
  EXPECT_EQ(cache.used_cells(), 18);
  batch.clear();
  batch.add(ids[32], 18, 0, true);
  const std::vector<float> l = r.logits(*m, batch, cache);
  for (float x : l) ASSERT_TRUE(std::isfinite(x));
}

INSTANTIATE_TEST_SUITE_P(Backends, LlamaStoriesOn, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace corral::model
