// The qwen2 architecture on a small random-weight model written with our GGUF writer: q/k/v
// biases, NeoX RoPE, tied output embeddings.
#include <gtest/gtest.h>

#include <random>

#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/harness.h"

namespace corral::model {
namespace {

using testing::max_abs_diff;
using testing::Runner;

constexpr int64_t kEmbd = 32, kHead = 4, kHeadKv = 2, kHeadDim = 8, kFf = 48, kVocab = 64;
constexpr int kLayers = 2;

// A GGUF in memory; the tensors' bytes live here as long as the File.
struct RandomQwen2 {
  std::vector<std::vector<float>> data;
  std::vector<uint8_t> bytes;
  ml::gguf::File file = make();

  ml::gguf::File make() {
    ml::gguf::Writer w;
    auto& md = w.metadata();
    md.set("general.architecture", "qwen2");
    md.set("qwen2.block_count", uint32_t{kLayers});
    md.set("qwen2.context_length", uint32_t{256});
    md.set("qwen2.embedding_length", uint32_t{kEmbd});
    md.set("qwen2.feed_forward_length", uint32_t{kFf});
    md.set("qwen2.attention.head_count", uint32_t{kHead});
    md.set("qwen2.attention.head_count_kv", uint32_t{kHeadKv});
    md.set("qwen2.rope.freq_base", 1000000.0f);
    md.set("qwen2.attention.layer_norm_rms_epsilon", 1e-6f);
    std::mt19937 rng(1234);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    data.reserve(64);
    auto add = [&](const std::string& name, std::vector<int64_t> ne, float mean, float spread) {
      int64_t n = 1;
      for (int64_t d : ne) n *= d;
      auto& v = data.emplace_back(static_cast<size_t>(n));
      for (float& x : v) x = mean + spread * normal(rng);
      w.add_tensor(name, ml::DType::F32, ne,
                   {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)});
    };
    add("token_embd.weight", {kEmbd, kVocab}, 0.0f, 1.0f);
    for (int il = 0; il < kLayers; ++il) {
      const std::string b = "blk." + std::to_string(il) + ".";
      const float s = 1.0f / std::sqrt(static_cast<float>(kEmbd));
      add(b + "attn_norm.weight", {kEmbd}, 1.0f, 0.1f);
      add(b + "attn_q.weight", {kEmbd, kHead * kHeadDim}, 0.0f, s);
      add(b + "attn_q.bias", {kHead * kHeadDim}, 0.0f, 0.5f);
      add(b + "attn_k.weight", {kEmbd, kHeadKv * kHeadDim}, 0.0f, s);
      add(b + "attn_k.bias", {kHeadKv * kHeadDim}, 0.0f, 0.5f);
      add(b + "attn_v.weight", {kEmbd, kHeadKv * kHeadDim}, 0.0f, s);
      add(b + "attn_v.bias", {kHeadKv * kHeadDim}, 0.0f, 0.5f);
      add(b + "attn_output.weight", {kHead * kHeadDim, kEmbd}, 0.0f, s);
      add(b + "ffn_norm.weight", {kEmbd}, 1.0f, 0.1f);
      add(b + "ffn_gate.weight", {kEmbd, kFf}, 0.0f, s);
      add(b + "ffn_up.weight", {kEmbd, kFf}, 0.0f, s);
      add(b + "ffn_down.weight", {kFf, kEmbd}, 0.0f, 1.0f / std::sqrt(static_cast<float>(kFf)));
    }
    add("output_norm.weight", {kEmbd}, 1.0f, 0.1f);
    bytes = w.to_bytes();
    return ml::gguf::File::parse(bytes, "random-qwen2.gguf");
  }
};

TEST(Qwen2Random, BindsBiasesAndTiesTheOutputToTheEmbeddings) {
  RandomQwen2 q;
  const auto m = load(q.file);
  EXPECT_TRUE(m->unused_tensors().empty());
  EXPECT_EQ(m->config().architecture, "qwen2");
  EXPECT_EQ(m->config().n_vocab, kVocab);
  EXPECT_EQ(m->config().head_dim_k, kHeadDim);
}

class Qwen2RandomOn : public testing::OnBackend {};

// Two sequences of different lengths: prefilled alone, and decoded together in shared batches
// (a chunk of each, then a token of each per step); every token's logits agree.
TEST_P(Qwen2RandomOn, CachedDecodingOfTwoSequencesEqualsTheirPrefills) {
  RandomQwen2 q;
  const auto m = load(q.file);
  Runner r(GetParam());
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, kVocab - 1);
  std::vector<int32_t> a(37), b(22);
  for (auto& t : a) t = tok(rng);
  for (auto& t : b) t = tok(rng);

  auto prefill = [&](const std::vector<int32_t>& seq) {
    auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
    Batch batch;
    for (size_t i = 0; i < seq.size(); ++i) batch.add(seq[i], static_cast<int32_t>(i), 0, true);
    return r.logits(*m, batch, cache);
  };
  const std::vector<float> want_a = prefill(a), want_b = prefill(b);

  auto cache = m->make_cache({.num_ctx = 96, .dtype = ml::DType::F32});
  Batch batch;
  for (int32_t i = 0; i < 5; ++i) batch.add(b[i], i, 1, i == 4);
  for (int32_t i = 0; i < 9; ++i) batch.add(a[i], i, 0, i == 8);
  std::vector<float> got = r.logits(*m, batch, cache);
  EXPECT_LE(max_abs_diff(&got[0], &want_b[4 * kVocab], kVocab), 1e-4f);
  EXPECT_LE(max_abs_diff(&got[kVocab], &want_a[8 * kVocab], kVocab), 1e-4f);
  float worst = 0.0f;
  for (int32_t pa = 9, pb = 5; pa < static_cast<int32_t>(a.size()); ++pa, ++pb) {
    batch.clear();
    const bool with_b = pb < static_cast<int32_t>(b.size());
    batch.add(a[pa], pa, 0, true);
    if (with_b) batch.add(b[pb], pb, 1, true);
    got = r.logits(*m, batch, cache);
    worst = std::max(worst, max_abs_diff(&got[0], &want_a[pa * kVocab], kVocab));
    if (with_b) worst = std::max(worst, max_abs_diff(&got[kVocab], &want_b[pb * kVocab], kVocab));
  }
  EXPECT_LE(worst, 1e-4f);
  // Removing b leaves a's cells untouched.
  cache.remove(1);
  EXPECT_EQ(cache.used_cells(), static_cast<int64_t>(a.size()));
}

// An F16 cache changes the prefill logits by no more than half-precision rounding of K and V.
TEST_P(Qwen2RandomOn, F16CacheStaysWithinHalfPrecisionOfF32) {
  RandomQwen2 q;
  const auto m = load(q.file);
  Runner r(GetParam());
  Batch batch;
  for (int32_t i = 0; i < 20; ++i) batch.add((i * 13) % kVocab, i, 0, true);
  auto f32 = m->make_cache({.num_ctx = 32, .dtype = ml::DType::F32});
  auto f16 = m->make_cache({.num_ctx = 32, .dtype = ml::DType::F16});
  const std::vector<float> a = r.logits(*m, batch, f32);
  const std::vector<float> b = r.logits(*m, batch, f16);
  EXPECT_LE(max_abs_diff(a.data(), b.data(), a.size()), 2e-2f);
}

INSTANTIATE_TEST_SUITE_P(Backends, Qwen2RandomOn, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace corral::model
