// The qwen3 architecture: a small random-weight model written with our GGUF writer (per-head
// q/k norms, head_dim independent of n_embd / n_head, tied or untied output), and the tiny-qwen3
// checkpoint converted by corral's converter against transformers' per-layer hidden states.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "convert/convert.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/harness.h"
#include "testdata.h"

namespace corral::model {
namespace {

using testing::max_abs_diff;
using testing::Runner;

// kHeadDim * kHead (64) differs from kEmbd (32), as in Qwen3 checkpoints.
constexpr int64_t kEmbd = 32, kHead = 4, kHeadKv = 2, kHeadDim = 16, kFf = 48, kVocab = 64;
constexpr int kLayers = 2;

struct RandomQwen3Options {
  bool untied = false;  // write output.weight (a copy of token_embd)
  std::string skip;     // a tensor to leave out
};

// A GGUF in memory; the tensors' bytes live here as long as the File.
struct RandomQwen3 {
  explicit RandomQwen3(RandomQwen3Options options = {}) : o(std::move(options)) {}

  RandomQwen3Options o;
  std::vector<std::vector<float>> data;
  std::vector<uint8_t> bytes;
  ml::gguf::File file = make();

  ml::gguf::File make() {
    ml::gguf::Writer w;
    auto& md = w.metadata();
    md.set("general.architecture", "qwen3");
    md.set("qwen3.block_count", uint32_t{kLayers});
    md.set("qwen3.context_length", uint32_t{256});
    md.set("qwen3.embedding_length", uint32_t{kEmbd});
    md.set("qwen3.feed_forward_length", uint32_t{kFf});
    md.set("qwen3.attention.head_count", uint32_t{kHead});
    md.set("qwen3.attention.head_count_kv", uint32_t{kHeadKv});
    md.set("qwen3.attention.key_length", uint32_t{kHeadDim});
    md.set("qwen3.attention.value_length", uint32_t{kHeadDim});
    md.set("qwen3.rope.freq_base", 1000000.0f);
    md.set("qwen3.attention.layer_norm_rms_epsilon", 1e-6f);
    std::mt19937 rng(4321);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    data.reserve(64);
    auto add_values = [&](const std::string& name, std::vector<int64_t> ne, std::vector<float> v) {
      if (name == o.skip) return;
      auto& kept = data.emplace_back(std::move(v));
      w.add_tensor(name, ml::DType::F32, ne,
                   {reinterpret_cast<const uint8_t*>(kept.data()), kept.size() * sizeof(float)});
    };
    auto add = [&](const std::string& name, std::vector<int64_t> ne, float mean, float spread) {
      int64_t n = 1;
      for (int64_t d : ne) n *= d;
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = mean + spread * normal(rng);
      add_values(name, std::move(ne), std::move(v));
    };
    add("token_embd.weight", {kEmbd, kVocab}, 0.0f, 1.0f);
    const std::vector<float> embd = data.back();
    for (int il = 0; il < kLayers; ++il) {
      const std::string b = "blk." + std::to_string(il) + ".";
      const float s = 1.0f / std::sqrt(static_cast<float>(kEmbd));
      add(b + "attn_norm.weight", {kEmbd}, 1.0f, 0.1f);
      add(b + "attn_q.weight", {kEmbd, kHead * kHeadDim}, 0.0f, s);
      add(b + "attn_q_norm.weight", {kHeadDim}, 1.0f, 0.3f);
      add(b + "attn_k.weight", {kEmbd, kHeadKv * kHeadDim}, 0.0f, s);
      add(b + "attn_k_norm.weight", {kHeadDim}, 1.0f, 0.3f);
      add(b + "attn_v.weight", {kEmbd, kHeadKv * kHeadDim}, 0.0f, s);
      add(b + "attn_output.weight", {kHead * kHeadDim, kEmbd}, 0.0f,
          1.0f / std::sqrt(static_cast<float>(kHead * kHeadDim)));
      add(b + "ffn_norm.weight", {kEmbd}, 1.0f, 0.1f);
      add(b + "ffn_gate.weight", {kEmbd, kFf}, 0.0f, s);
      add(b + "ffn_up.weight", {kEmbd, kFf}, 0.0f, s);
      add(b + "ffn_down.weight", {kFf, kEmbd}, 0.0f, 1.0f / std::sqrt(static_cast<float>(kFf)));
    }
    add("output_norm.weight", {kEmbd}, 1.0f, 0.1f);
    if (o.untied) add_values("output.weight", {kEmbd, kVocab}, embd);
    bytes = w.to_bytes();
    return ml::gguf::File::parse(bytes, "random-qwen3.gguf");
  }
};

std::vector<float> prefill_logits(Runner& r, Model& m, const std::vector<int32_t>& ids) {
  auto cache = m.make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  return r.logits(m, batch, cache);
}

TEST(Qwen3Random, BindsHeadNormsAndTiesTheOutputToTheEmbeddings) {
  RandomQwen3 q;
  const auto m = load(q.file);
  EXPECT_TRUE(m->unused_tensors().empty());
  EXPECT_EQ(m->config().architecture, "qwen3");
  EXPECT_EQ(m->config().n_vocab, kVocab);
  EXPECT_EQ(m->config().head_dim_k, kHeadDim);
  EXPECT_EQ(m->config().head_dim_v, kHeadDim);
}

// Larger Qwen3 models store output.weight: it binds (nothing unused), and equal to the embedding
// table it gives the tied model's logits.
TEST(Qwen3Random, UntiedOutputBindsAndEqualsTheTiedModelWithTheSameTable) {
  RandomQwen3 tied, untied({.untied = true});
  const auto a = load(tied.file);
  const auto b = load(untied.file);
  EXPECT_TRUE(b->unused_tensors().empty());
  Runner r("reference");
  const std::vector<int32_t> ids = {3, 17, 42, 5, 63, 0, 9};
  EXPECT_EQ(prefill_logits(r, *a, ids), prefill_logits(r, *b, ids));
}

TEST(Qwen3Random, MissingHeadNormIsABindErrorNamingIt) {
  RandomQwen3 q({.skip = "blk.1.attn_k_norm.weight"});
  try {
    load(q.file);
    FAIL() << "loaded without blk.1.attn_k_norm.weight";
  } catch (const nn::BindError& e) {
    EXPECT_NE(std::string(e.what()).find("blk.1.attn_k_norm.weight"), std::string::npos)
        << e.what();
  }
}

class Qwen3RandomOn : public testing::OnBackend {};

// Two sequences of different lengths: prefilled alone, and decoded together in shared batches
// (a chunk of each, then a token of each per step); every token's logits agree.
TEST_P(Qwen3RandomOn, CachedDecodingOfTwoSequencesEqualsTheirPrefills) {
  RandomQwen3 q;
  const auto m = load(q.file);
  Runner r(GetParam());
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> tok(0, kVocab - 1);
  std::vector<int32_t> a(37), b(22);
  for (auto& t : a) t = tok(rng);
  for (auto& t : b) t = tok(rng);
  const std::vector<float> want_a = prefill_logits(r, *m, a), want_b = prefill_logits(r, *m, b);

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

INSTANTIATE_TEST_SUITE_P(Backends, Qwen3RandomOn, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

// --- tiny-qwen3 against transformers' hidden states ---

std::vector<float> tensor_f32(const ml::gguf::File& f, const std::string& name) {
  const ml::gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr || t->dtype != ml::DType::F32)
    throw std::runtime_error(name + ": no F32 tensor");
  const auto* p = reinterpret_cast<const float*>(t->data);
  return {p, p + t->n_elements()};
}

// The first `n_layer` blocks of a model file: its metadata with block_count lowered, its
// tensors without the later blocks' (borrowing the file's bytes).
std::vector<uint8_t> truncated(const ml::gguf::File& f, int n_layer) {
  ml::gguf::Writer w(f.metadata());
  w.metadata().set("qwen3.block_count", static_cast<uint32_t>(n_layer));
  for (const auto& t : f.tensors()) {
    if (t.name.starts_with("blk.") && std::stoi(t.name.substr(4)) >= n_layer) continue;
    w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
  }
  return w.to_bytes();
}

// llama.cpp's names and keys: head_dim as key_length/value_length (32, not 64 / 4), the head
// norms as blk.N.attn_q_norm/attn_k_norm of head_dim, no biases, and no output.weight for a tied
// checkpoint.
TEST(Qwen3Convert, WritesLlamaCppNamesAndKeys) {
  const std::string out =
      ::testing::TempDir() + "tiny-qwen3-names-" + std::to_string(::getpid()) + ".gguf";
  convert::ConvertOptions options;
  options.type = "F16";
  options.write.n_threads = 1;
  convert::convert_hf(corral::testing::testdata_path("reference/tiny-qwen3"), out, options);
  const ml::gguf::File f = ml::gguf::File::open(out);
  std::remove(out.c_str());
  const auto& md = f.metadata();
  EXPECT_EQ(md.get_string("general.architecture"), "qwen3");
  EXPECT_EQ(md.get_u32("qwen3.embedding_length"), 64u);
  EXPECT_EQ(md.get_u32("qwen3.attention.head_count"), 4u);
  EXPECT_EQ(md.get_u32("qwen3.attention.head_count_kv"), 2u);
  EXPECT_EQ(md.get_u32("qwen3.attention.key_length"), 32u);
  EXPECT_EQ(md.get_u32("qwen3.attention.value_length"), 32u);
  EXPECT_EQ(md.get_f32("qwen3.rope.freq_base"), 1000000.0f);
  for (const char* name : {"blk.0.attn_q_norm.weight", "blk.1.attn_k_norm.weight"}) {
    const ml::gguf::TensorInfo* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->shape(), (std::vector<int64_t>{32})) << name;
    EXPECT_EQ(t->dtype, ml::DType::F32) << name;  // 1-D tensors stay F32, as llama.cpp keeps them
  }
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight")->shape(), (std::vector<int64_t>{64, 128}));
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.bias"), nullptr);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  const auto m = load(f);
  EXPECT_TRUE(m->unused_tensors().empty());
}

// The final hidden states after output_norm, f32 [n_tokens][n_embd].
std::vector<float> normed_hidden(const std::string& backend, Model& m,
                                 const std::vector<int32_t>& ids) {
  Runner r(backend);
  auto cache = m.make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  ml::Graph g;
  ml::Tensor out = m.forward(g, batch, cache, Output::kEmbeddings);
  r.executor().compute(g, {out});
  const auto* p = static_cast<const float*>(out.data());
  return {p, p + out.nelements()};
}

class Qwen3HiddenStates : public testing::OnBackend {};

// transformers' hidden_states are the embedding output, then each layer's output, the last one
// after the final norm. The engine exposes states after output_norm, so a model cut after layer
// l gives rms_norm(h_l) * output_norm: compared with the reference normalized the same way,
// every layer matches within the logits' tolerance, and the embeddings match to the
// reference's printed precision.
TEST_P(Qwen3HiddenStates, EveryLayerMatchesTransformersAfterConversionToF32) {
  const std::string dir = corral::testing::testdata_path("reference/tiny-qwen3");
  const std::string out = ::testing::TempDir() + "tiny-qwen3-" + GetParam() + "-" +
                          std::to_string(::getpid()) + ".gguf";
  convert::ConvertOptions options;
  options.type = "F32";
  options.write.n_threads = 1;
  convert::convert_hf(dir, out, options);
  const ml::gguf::File file = ml::gguf::File::open(out);
  std::remove(out.c_str());  // the mapping stays valid

  std::ifstream in(dir + "/reference.json");
  const nlohmann::json c = nlohmann::json::parse(in).at("cases").at(0);
  const std::vector<int32_t> ids = c.at("input_ids");
  const std::vector<float> hidden = c.at("hidden_states");
  const std::vector<int64_t> shape = c.at("hidden_states_shape");
  const int n_layer = static_cast<int>(shape[0]) - 1;
  const int64_t n_tokens = shape[1], n_embd = shape[2];
  ASSERT_EQ(n_tokens, static_cast<int64_t>(ids.size()));
  const auto want = [&](int l, int64_t t) { return &hidden[(l * n_tokens + t) * n_embd]; };

  const std::vector<float> embd = tensor_f32(file, "token_embd.weight");
  for (int64_t t = 0; t < n_tokens; ++t) {
    EXPECT_LE(max_abs_diff(&embd[ids[t] * n_embd], want(0, t), n_embd), 1e-6f) << "token " << t;
  }

  const std::vector<float> norm = tensor_f32(file, "output_norm.weight");
  const float eps = file.metadata().get_f32("qwen3.attention.layer_norm_rms_epsilon");
  for (int l = 1; l <= n_layer; ++l) {
    const std::vector<uint8_t> bytes = truncated(file, l);
    const ml::gguf::File cut = ml::gguf::File::parse(bytes, "tiny-qwen3 cut after layer");
    const auto m = load(cut);
    const std::vector<float> got = normed_hidden(GetParam(), *m, ids);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<float> expect(want(l, t), want(l, t) + n_embd);
      if (l < n_layer) {  // the last entry is already normalized
        double ss = 0;
        for (float x : expect) ss += static_cast<double>(x) * x;
        const float inv = 1.0f / std::sqrt(static_cast<float>(ss / n_embd) + eps);
        for (int64_t i = 0; i < n_embd; ++i) expect[i] *= inv * norm[i];
      }
      EXPECT_LE(max_abs_diff(&got[t * n_embd], expect.data(), n_embd), 1e-4f)
          << "layer " << l << " token " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, Qwen3HiddenStates, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace corral::model
