// The gemma3 architecture: the tiny-gemma3 checkpoint converted by corral's converter against
// transformers' logits and per-layer hidden states (its first prompt is longer than the sliding
// window of 8, so the window and the sliding cache are exercised), cached decoding against
// prefill, prefix reuse in the engine, and a long generation on a synthetic gemma3-shaped model
// whose sliding layers' cache stays the same size.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "convert/convert.h"
#include "convert/safetensors.h"
#include "convert/tokenizer_json.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/harness.h"
#include "runner/engine.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::model {
namespace {

using testing::max_abs_diff;
using testing::Runner;

std::string tiny_dir() { return corral::testing::testdata_path("reference/tiny-gemma3"); }

nlohmann::json reference() {
  std::ifstream in(tiny_dir() + "/reference.json");
  return nlohmann::json::parse(in);
}

// tiny-gemma3 converted to `type` in a temporary file, opened (the mapping outlives the file).
ml::gguf::File converted(const std::string& type) {
  const std::string out =
      ::testing::TempDir() + "tiny-gemma3-" + type + "-" + std::to_string(::getpid()) + ".gguf";
  convert::ConvertOptions options;
  options.type = type;
  options.write.n_threads = 1;
  convert::convert_hf(tiny_dir(), out, options);
  ml::gguf::File f = ml::gguf::File::open(out);
  std::remove(out.c_str());
  return f;
}

std::vector<float> tensor_f32(const ml::gguf::File& f, const std::string& name) {
  const ml::gguf::TensorInfo* t = f.find_tensor(name);
  if (t == nullptr || t->dtype != ml::DType::F32) {
    throw std::runtime_error(name + ": no F32 tensor");
  }
  const auto* p = reinterpret_cast<const float*>(t->data);
  return {p, p + t->n_elements()};
}

std::vector<float> prefill_logits(Runner& r, Model& m, const std::vector<int32_t>& ids) {
  auto cache = m.make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  return r.logits(m, batch, cache);
}

// llama.cpp's names and keys, the layer types and sliding RoPE base beside them, and Gemma's
// norm weights stored as 1 + weight.
TEST(Gemma3Convert, WritesLlamaCppNamesKeysAndShiftedNorms) {
  const ml::gguf::File f = converted("F16");
  const auto& md = f.metadata();
  EXPECT_EQ(md.get_string("general.architecture"), "gemma3");
  EXPECT_EQ(md.get_u32("gemma3.block_count"), 4u);
  EXPECT_EQ(md.get_u32("gemma3.attention.head_count_kv"), 1u);
  EXPECT_EQ(md.get_u32("gemma3.attention.key_length"), 32u);
  EXPECT_EQ(md.get_u32("gemma3.attention.sliding_window"), 8u);
  EXPECT_EQ(md.get_f32("gemma3.rope.freq_base"), 1000000.0f);
  EXPECT_EQ(md.get_f32("gemma3.rope.freq_base_swa"), 10000.0f);
  // query_pre_attn_scalar equals head_dim here: no key, as llama.cpp writes none.
  EXPECT_FALSE(md.contains("gemma3.attention.query_pre_attn_scalar"));
  const auto& pattern = md.at("gemma3.attention.sliding_window_pattern").as_array();
  ASSERT_EQ(pattern.items.size(), 4u);
  const bool want[] = {true, true, false, true};
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(pattern.items[i].as<bool>(), want[i]) << i;
  for (const char* name :
       {"blk.0.attn_norm.weight", "blk.0.post_attention_norm.weight", "blk.0.ffn_norm.weight",
        "blk.0.post_ffw_norm.weight", "blk.3.attn_q_norm.weight", "blk.3.attn_k_norm.weight"}) {
    const ml::gguf::TensorInfo* t = f.find_tensor(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->dtype, ml::DType::F32) << name;
  }
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  const convert::Checkpoint ck = convert::Checkpoint::open(tiny_dir());
  const convert::SafetensorsTensor* hf = ck.find("model.layers.1.pre_feedforward_layernorm.weight");
  ASSERT_NE(hf, nullptr);
  std::vector<float> w(static_cast<size_t>(hf->n_elements()));
  hf->read_f32(w.data());
  const std::vector<float> got = tensor_f32(f, "blk.1.ffn_norm.weight");
  ASSERT_EQ(got.size(), w.size());
  for (size_t i = 0; i < w.size(); ++i) EXPECT_EQ(got[i], w[i] + 1.0f) << i;
  const auto m = load(f);
  EXPECT_TRUE(m->unused_tensors().empty());
  EXPECT_EQ(m->config().sliding_window, 8);
  EXPECT_EQ(m->config().sliding_layers, (std::vector<bool>{true, true, false, true}));
}

// Gemma3ForConditionalGeneration keeps the text model under model.language_model. beside a
// vision tower: the same text model converts to the same tensors and keys, the tower skipped.
TEST(Gemma3Convert, TextModelOfConditionalGenerationConvertsAsTheCausalLm) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(::testing::TempDir()) / ("gemma3-cg-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json", "generation_config.json"}) {
    fs::copy_file(fs::path(tiny_dir()) / f, dir / f, fs::copy_options::overwrite_existing);
  }
  std::ifstream cin(tiny_dir() + "/config.json");
  nlohmann::json text = nlohmann::json::parse(cin);
  text.erase("architectures");
  std::ofstream(dir / "config.json") << nlohmann::json{
      {"architectures", {"Gemma3ForConditionalGeneration"}},
      {"model_type", "gemma3"},
      {"text_config", text},
      {"vision_config",
       {{"hidden_size", 8}}}}.dump();
  // model.safetensors with the language model's names, and one vision tensor.
  std::ifstream in(tiny_dir() + "/model.safetensors", std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const nlohmann::json header = nlohmann::json::parse(bytes.substr(8, n));
  nlohmann::json out_header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t] : header.items()) {
    if (name == "__metadata__") continue;
    const size_t b = t["data_offsets"][0], e = t["data_offsets"][1];
    nlohmann::json entry = t;
    entry["data_offsets"] = {data.size(), data.size() + (e - b)};
    data += bytes.substr(8 + n + b, e - b);
    out_header["model.language_model." + name.substr(std::string("model.").size())] = entry;
  }
  out_header["model.vision_tower.patch_embedding.weight"] = {
      {"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {data.size(), data.size() + 8}}};
  data += std::string(8, '\0');
  const std::string h = out_header.dump();
  const uint64_t len = h.size();
  {
    std::ofstream f(dir / "model.safetensors", std::ios::binary);
    f.write(reinterpret_cast<const char*>(&len), 8);
    f << h << data;
  }
  const std::string gguf = (dir / "cg.gguf").string();
  convert::ConvertOptions options;
  options.type = "F32";
  options.write.n_threads = 1;
  convert::convert_hf(dir.string(), gguf, options);
  const ml::gguf::File got = ml::gguf::File::open(gguf);
  fs::remove_all(dir);
  const ml::gguf::File want = converted("F32");
  ASSERT_EQ(got.tensors().size(), want.tensors().size());
  for (const auto& t : want.tensors()) {
    const ml::gguf::TensorInfo* u = got.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(tensor_f32(got, t.name), tensor_f32(want, t.name)) << t.name;
  }
  for (const char* key :
       {"gemma3.attention.sliding_window", "gemma3.attention.sliding_window_pattern",
        "gemma3.rope.freq_base_swa", "gemma3.block_count"}) {
    EXPECT_EQ(got.metadata().at(key), want.metadata().at(key)) << key;
  }
}

// The first `n_layer` blocks of a model file (the layer pattern cut to match).
std::vector<uint8_t> truncated(const ml::gguf::File& f, int n_layer) {
  ml::gguf::Writer w(f.metadata());
  w.metadata().set("gemma3.block_count", static_cast<uint32_t>(n_layer));
  const auto& all = f.metadata().at("gemma3.attention.sliding_window_pattern").as_array().items;
  std::vector<ml::gguf::Value> pattern(all.begin(), all.begin() + n_layer);
  w.metadata().set("gemma3.attention.sliding_window_pattern",
                   ml::gguf::Value::array(ml::gguf::ValueType::kBool, std::move(pattern)));
  for (const auto& t : f.tensors()) {
    if (t.name.starts_with("blk.") && std::stoi(t.name.substr(4)) >= n_layer) continue;
    w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
  }
  return w.to_bytes();
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

class Gemma3OnBackend : public testing::OnBackend {};

// transformers' hidden_states: the scaled embeddings, then each layer's output, the last after
// the final norm. A model cut after layer l gives rms_norm(h_l) * output_norm.
TEST_P(Gemma3OnBackend, EveryLayerMatchesTransformersHiddenStates) {
  const ml::gguf::File file = converted("F32");
  const nlohmann::json c = reference().at("cases").at(0);
  const std::vector<int32_t> ids = c.at("input_ids");
  const std::vector<float> hidden = c.at("hidden_states");
  const std::vector<int64_t> shape = c.at("hidden_states_shape");
  const int n_layer = static_cast<int>(shape[0]) - 1;
  const int64_t n_tokens = shape[1], n_embd = shape[2];
  ASSERT_EQ(n_tokens, static_cast<int64_t>(ids.size()));
  ASSERT_GT(n_tokens, 8);  // longer than the window
  const auto want = [&](int l, int64_t t) { return &hidden[(l * n_tokens + t) * n_embd]; };

  // Gemma3TextScaledWordEmbedding: rows times sqrt(n_embd) = 8.
  const std::vector<float> embd = tensor_f32(file, "token_embd.weight");
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::vector<float> scaled(&embd[ids[t] * n_embd], &embd[(ids[t] + 1) * n_embd]);
    for (float& x : scaled) x *= 8.0f;
    EXPECT_LE(max_abs_diff(scaled.data(), want(0, t), n_embd), 1e-5f) << "token " << t;
  }

  const std::vector<float> norm = tensor_f32(file, "output_norm.weight");
  const float eps = file.metadata().get_f32("gemma3.attention.layer_norm_rms_epsilon");
  for (int l = 1; l <= n_layer; ++l) {
    const std::vector<uint8_t> bytes = truncated(file, l);
    const ml::gguf::File cut = ml::gguf::File::parse(bytes, "tiny-gemma3 cut after layer");
    const auto m = load(cut);
    const std::vector<float> got = normed_hidden(GetParam(), *m, ids);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<float> expect(want(l, t), want(l, t) + n_embd);
      float scale = 1.0f;
      if (l < n_layer) {  // the last entry is already normalized
        double ss = 0;
        for (float x : expect) ss += static_cast<double>(x) * x;
        const float inv = 1.0f / std::sqrt(static_cast<float>(ss / n_embd) + eps);
        for (int64_t i = 0; i < n_embd; ++i) expect[i] *= inv * norm[i];
      }
      for (float x : expect) scale = std::max(scale, std::fabs(x));
      EXPECT_LE(max_abs_diff(&got[t * n_embd], expect.data(), n_embd), 1e-4f * scale)
          << "layer " << l << " token " << t;
    }
  }
}

// Every case's logits within 1e-4 of transformers; then the first case decoded through the
// cache (a chunk of 5, then a token at a time, so the sliding layers evict) equals the prefill,
// also with a second sequence sharing each batch.
TEST_P(Gemma3OnBackend, LogitsMatchAndCachedDecodingOfTwoSequencesEqualsPrefill) {
  const ml::gguf::File file = converted("F32");
  const auto m = load(file);
  const int64_t n_vocab = m->config().n_vocab;
  Runner r(GetParam());
  const nlohmann::json cases = reference().at("cases");
  for (const auto& c : cases) {
    const std::vector<int32_t> ids = c.at("input_ids");
    const std::vector<float> want = c.at("logits");
    const std::vector<float> got = prefill_logits(r, *m, ids);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_LE(max_abs_diff(&got[i * n_vocab], &want[i * n_vocab], n_vocab), 1e-4f)
          << c.at("name") << " position " << i;
    }
  }
  const std::vector<int32_t> a = cases.at(0).at("input_ids"), b = cases.at(1).at("input_ids");
  const std::vector<float> want_a = prefill_logits(r, *m, a), want_b = prefill_logits(r, *m, b);
  // Windows of both sequences plus a batch of 5 + 1: the sliding cells stay that few.
  auto cache =
      m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32, .max_batch = 6, .max_seqs = 2});
  ASSERT_NE(cache.sliding(), nullptr);
  EXPECT_EQ(cache.sliding()->num_ctx(), 2 * 7 + 6);
  Batch batch;
  for (int32_t i = 0; i < 5; ++i) batch.add(a[i], i, 0, i == 4);
  batch.add(b[0], 0, 1, true);
  std::vector<float> got = r.logits(*m, batch, cache);
  float worst = std::max(max_abs_diff(&got[0], &want_a[4 * n_vocab], n_vocab),
                         max_abs_diff(&got[n_vocab], &want_b[0], n_vocab));
  for (int32_t pa = 5, pb = 1; pa < static_cast<int32_t>(a.size()); ++pa, ++pb) {
    batch.clear();
    const bool with_b = pb < static_cast<int32_t>(b.size());
    batch.add(a[pa], pa, 0, true);
    if (with_b) batch.add(b[pb], pb, 1, true);
    got = r.logits(*m, batch, cache);
    worst = std::max(worst, max_abs_diff(&got[0], &want_a[pa * n_vocab], n_vocab));
    if (with_b) {
      worst = std::max(worst, max_abs_diff(&got[n_vocab], &want_b[pb * n_vocab], n_vocab));
    }
    // Each sequence keeps at most its window in the sliding cells.
    EXPECT_LE(cache.sliding()->used_cells(), 8 + (with_b ? 8 : 7));
  }
  EXPECT_LE(worst, 1e-4f);
  EXPECT_EQ(cache.used_cells(), static_cast<int64_t>(a.size() + b.size()));
  // The sliding layers dropped a's early positions: only a prefix whose last window is still
  // cached can be continued.
  EXPECT_EQ(cache.reusable(0, static_cast<int32_t>(a.size())), static_cast<int32_t>(a.size()));
  EXPECT_EQ(cache.reusable(0, 12), 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, Gemma3OnBackend, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

// The engine with a reused prefix (one it can continue, and one whose window the sliding layers
// dropped) generates what a fresh engine generates.
TEST(Gemma3Engine, PrefixReuseGivesTheFreshResult) {
  const std::string out =
      ::testing::TempDir() + "tiny-gemma3-engine-" + std::to_string(::getpid()) + ".gguf";
  convert::ConvertOptions options;
  options.type = "F32";
  options.write.n_threads = 1;
  convert::convert_hf(tiny_dir(), out, options);
  const std::vector<int32_t> prompt = reference().at("cases").at(0).at("input_ids");
  sample::Options greedy;
  greedy.temperature = 0.0f;
  greedy.num_predict = 12;
  greedy.num_batch = 7;
  const auto run = [&](runner::Engine& e, std::span<const int32_t> p) {
    std::string text;
    e.generate(p, greedy, [&](std::string_view s) { text += s; });
    return text;
  };
  const std::vector<int32_t> longer = [&] {
    std::vector<int32_t> v = prompt;
    v.insert(v.end(), prompt.begin() + 1, prompt.begin() + 6);
    return v;
  }();
  const auto fresh = [&](std::span<const int32_t> p) {
    runner::Engine e(out, {.n_threads = 1});
    return run(e, p);
  };
  const std::string want_20 = fresh(std::span(prompt).first(20));
  const std::string want_short = fresh(prompt), want_long = fresh(longer);
  runner::Engine reused(out, {.n_threads = 1});
  std::remove(out.c_str());
  EXPECT_EQ(run(reused, std::span(prompt).first(20)), want_20);
  EXPECT_EQ(run(reused, prompt), want_short);  // continues from 20 positions
  EXPECT_EQ(run(reused, longer), want_long);   // the window before position 30 is gone
  EXPECT_EQ(run(reused, prompt), want_short);
  // Past a context of 16 the engine shifts: the sliding cells move with the full ones and
  // generation goes on.
  sample::Options shifting = greedy;
  shifting.num_ctx = 16;
  shifting.num_predict = 40;
  const runner::Stats stats =
      reused.generate(std::span(prompt).first(10), shifting, [](std::string_view) {});
  EXPECT_EQ(stats.eval_count, 40);
  EXPECT_EQ(stats.done_reason, "length");
}

// Gemma 3's real tokenizer (SentencePiece BPE with byte fallback in tokenizer.json) written as
// GGUF keys encodes and decodes as Hugging Face's tokenizers does.
TEST(Gemma3Tokenizer, ConvertedVocabularyRoundTripsTheReferenceCases) {
  const std::string dir = corral::testing::testdata_path("tokenizers/gemma3");
  const convert::HfConfig config(nlohmann::json{{"architectures", {"Gemma3ForCausalLM"}}},
                                 dir + "/config.json");
  ml::gguf::Metadata md;
  const auto hf = tokenizer::Tokenizer::from_hf(dir);
  convert::add_tokenizer(dir, config, static_cast<int64_t>(hf.vocab().size()),
                         /*prefer_sentencepiece=*/false, md);
  const auto tok = tokenizer::Tokenizer::from_gguf(md);
  std::ifstream in(corral::testing::testdata_path("reference/tokenizers/gemma3.json"));
  const nlohmann::json cases = nlohmann::json::parse(in).at("cases");
  ASSERT_FALSE(cases.empty());
  for (const auto& c : cases) {
    const std::string text = c.at("text");
    const std::vector<int32_t> ids = c.at("ids");
    EXPECT_EQ(tok.encode(text, /*add_special=*/false), ids) << text;
    EXPECT_EQ(tok.encode(text, /*add_special=*/true),
              c.at("ids_with_specials").get<std::vector<int32_t>>())
        << text;
    EXPECT_EQ(tok.decode(ids), c.at("decoded").get<std::string>()) << text;
  }
}

// --- a synthetic gemma3-shaped model: the sliding cache's size does not follow the context ---

constexpr int64_t kEmbd = 32, kHead = 2, kHeadKv = 1, kHeadDim = 16, kFf = 48, kVocab = 64;
constexpr int kLayers = 2, kWindow = 16;

struct RandomGemma3 {
  std::vector<std::vector<float>> data;
  std::vector<uint8_t> bytes;
  ml::gguf::File file = make();

  ml::gguf::File make() {
    ml::gguf::Writer w;
    auto& md = w.metadata();
    md.set("general.architecture", "gemma3");
    md.set("gemma3.block_count", uint32_t{kLayers});
    md.set("gemma3.context_length", uint32_t{8192});
    md.set("gemma3.embedding_length", uint32_t{kEmbd});
    md.set("gemma3.feed_forward_length", uint32_t{kFf});
    md.set("gemma3.attention.head_count", uint32_t{kHead});
    md.set("gemma3.attention.head_count_kv", uint32_t{kHeadKv});
    md.set("gemma3.attention.key_length", uint32_t{kHeadDim});
    md.set("gemma3.attention.value_length", uint32_t{kHeadDim});
    md.set("gemma3.attention.sliding_window", uint32_t{kWindow});
    md.set("gemma3.attention.sliding_window_pattern", uint32_t{2});  // sliding, full
    std::mt19937 rng(99);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto add = [&](const std::string& name, std::vector<int64_t> ne, float mean, float spread) {
      int64_t n = 1;
      for (int64_t d : ne) n *= d;
      auto& v = data.emplace_back(static_cast<size_t>(n));
      for (float& x : v) x = mean + spread * normal(rng);
      w.add_tensor(name, ml::DType::F32, ne,
                   {reinterpret_cast<const uint8_t*>(v.data()), v.size() * sizeof(float)});
    };
    add("token_embd.weight", {kEmbd, kVocab}, 0.0f, 0.2f);
    const float s = 1.0f / std::sqrt(static_cast<float>(kEmbd));
    for (int il = 0; il < kLayers; ++il) {
      const std::string b = "blk." + std::to_string(il) + ".";
      for (const char* n : {"attn_norm", "post_attention_norm", "ffn_norm", "post_ffw_norm"}) {
        add(b + n + ".weight", {kEmbd}, 1.0f, 0.1f);
      }
      add(b + "attn_q.weight", {kEmbd, kHead * kHeadDim}, 0.0f, s);
      add(b + "attn_k.weight", {kEmbd, kHeadKv * kHeadDim}, 0.0f, s);
      add(b + "attn_v.weight", {kEmbd, kHeadKv * kHeadDim}, 0.0f, s);
      add(b + "attn_q_norm.weight", {kHeadDim}, 1.0f, 0.1f);
      add(b + "attn_k_norm.weight", {kHeadDim}, 1.0f, 0.1f);
      add(b + "attn_output.weight", {kHead * kHeadDim, kEmbd}, 0.0f, s);
      add(b + "ffn_gate.weight", {kEmbd, kFf}, 0.0f, s);
      add(b + "ffn_up.weight", {kEmbd, kFf}, 0.0f, s);
      add(b + "ffn_down.weight", {kFf, kEmbd}, 0.0f, 1.0f / std::sqrt(static_cast<float>(kFf)));
    }
    add("output_norm.weight", {kEmbd}, 1.0f, 0.1f);
    bytes = w.to_bytes();
    return ml::gguf::File::parse(bytes, "random-gemma3.gguf");
  }
};

TEST(Gemma3Random, A4096TokenGenerationKeepsTheSlidingCacheTheSameSize) {
  RandomGemma3 g;
  const auto m = load(g.file);
  EXPECT_TRUE(m->unused_tensors().empty());
  EXPECT_EQ(m->config().sliding_layers, (std::vector<bool>{true, false}));
  constexpr int kSteps = 4096, kPrompt = 32;
  auto cache = m->make_cache(
      {.num_ctx = kSteps + kPrompt + 1, .dtype = ml::DType::F16, .max_batch = kPrompt});
  ASSERT_NE(cache.sliding(), nullptr);
  const kvcache::Causal& swa = *cache.sliding();
  // One layer of each kind: the full layer's cells follow the context, the sliding layer's
  // the window and one batch.
  EXPECT_EQ(swa.num_ctx(), kWindow - 1 + kPrompt);
  const size_t swa_bytes = swa.bytes();
  EXPECT_EQ(swa_bytes, 2 * ml::row_size(ml::DType::F16, kHeadKv * kHeadDim) * swa.num_ctx());
  EXPECT_EQ(cache.bytes(), 2 * ml::row_size(ml::DType::F16, kHeadKv * kHeadDim) * cache.num_ctx());

  Runner r("cpu");
  std::vector<int32_t> prompt(kPrompt);
  for (int i = 0; i < kPrompt; ++i) prompt[i] = (i * 7) % kVocab;
  Batch b;
  for (int i = 0; i < kPrompt; ++i) b.add(prompt[i], i, 0, i + 1 == kPrompt);
  int64_t most_swa = 0;
  for (int32_t pos = kPrompt; pos < kPrompt + kSteps; ++pos) {
    const std::vector<float> l = r.logits(*m, b, cache);
    ASSERT_TRUE(std::isfinite(l[0]));
    most_swa = std::max(most_swa, swa.used_cells());
    EXPECT_EQ(swa.bytes(), swa_bytes);
    b.clear();
    b.add(testing::argmax(l.data(), kVocab), pos, 0, true);
  }
  EXPECT_EQ(cache.used_cells(), kPrompt + kSteps - 1);
  EXPECT_EQ(swa.used_cells(), kWindow);  // the window: the last token's and 15 before it
  EXPECT_EQ(most_swa, kPrompt);          // at most the prompt batch
  EXPECT_LE(swa.n_kv(), swa.num_ctx());
}

}  // namespace
}  // namespace corral::model
