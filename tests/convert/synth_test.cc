// Synthetic benchmark models: the released models' shapes and metadata without writing them, and
// a tiny preset written in full that corral's engine loads, tokenizes with and runs.
#include "convert/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "convert/quantize_fixture.h"
#include "ml/gguf/reader.h"
#include "runner/engine.h"

namespace corral::convert {
namespace {

using testing::TempDir;

std::map<std::string, std::vector<int64_t>> shapes(const std::vector<TensorSource>& tensors) {
  std::map<std::string, std::vector<int64_t>> out;
  for (const TensorSource& t : tensors) out[t.name] = t.ne;
  return out;
}

TEST(Synth, ReleasedPresetsHaveTheModelsTensorCountsAndShapes) {
  struct Want {
    const char* preset;
    size_t n_tensors;
    const char* name;
    std::vector<int64_t> ne;
  };
  const std::vector<Want> wants = {
      // rope_freqs, token_embd, output_norm, 9 per layer; tied: no output.weight.
      {"llama-3.2-1b", 1 + 2 + 16 * 9, "blk.15.attn_k.weight", {2048, 512}},
      {"llama-3.2-1b", 1 + 2 + 16 * 9, "rope_freqs.weight", {32}},
      {"llama-3.2-3b", 1 + 2 + 28 * 9, "blk.0.attn_q.weight", {3072, 3072}},
      {"llama-3.2-3b", 1 + 2 + 28 * 9, "blk.27.ffn_down.weight", {8192, 3072}},
      {"llama-3.1-8b", 1 + 3 + 32 * 9, "output.weight", {4096, 128256}},
      {"llama-3.1-8b", 1 + 3 + 32 * 9, "blk.31.ffn_gate.weight", {4096, 14336}},
      // token_embd, output_norm, 12 per layer (q/k/v biases).
      {"qwen2.5-0.5b", 2 + 24 * 12, "blk.0.attn_k.bias", {128}},
      {"qwen2.5-0.5b", 2 + 24 * 12, "token_embd.weight", {896, 151936}},
      {"qwen2.5-1.5b", 2 + 28 * 12, "blk.27.ffn_up.weight", {1536, 8960}},
      {"qwen2.5-1.5b", 2 + 28 * 12, "blk.3.attn_v.weight", {1536, 256}},
  };
  for (const Want& w : wants) {
    SCOPED_TRACE(std::string(w.preset) + " " + w.name);
    const auto tensors = synth_tensors(find_synth_preset(w.preset), 0);
    EXPECT_EQ(tensors.size(), w.n_tensors);
    const auto s = shapes(tensors);
    ASSERT_TRUE(s.count(w.name));
    EXPECT_EQ(s.at(w.name), w.ne);
  }
  EXPECT_FALSE(shapes(synth_tensors(find_synth_preset("llama-3.2-1b"), 0)).count("output.weight"));
}

TEST(Synth, MetadataIsWhatTheConverterWritesForTheConfig) {
  const QuantType q4 = parse_quant_type("Q4_0");
  const ml::gguf::Metadata l = synth_metadata(find_synth_preset("llama-3.2-1b"), q4);
  EXPECT_EQ(l.get<std::string>("general.architecture"), "llama");
  EXPECT_EQ(l.get<uint32_t>("llama.block_count"), 16u);
  EXPECT_EQ(l.get<uint32_t>("llama.context_length"), 131072u);
  EXPECT_EQ(l.get<uint32_t>("llama.embedding_length"), 2048u);
  EXPECT_EQ(l.get<uint32_t>("llama.feed_forward_length"), 8192u);
  EXPECT_EQ(l.get<uint32_t>("llama.attention.head_count"), 32u);
  EXPECT_EQ(l.get<uint32_t>("llama.attention.head_count_kv"), 8u);
  EXPECT_EQ(l.get<uint32_t>("llama.rope.dimension_count"), 64u);
  EXPECT_EQ(l.get<uint32_t>("llama.vocab_size"), 128256u);
  EXPECT_FLOAT_EQ(l.get<float>("llama.rope.freq_base"), 500000.0f);
  EXPECT_FLOAT_EQ(l.get<float>("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(l.get<uint32_t>("general.file_type"), q4.ftype);
  EXPECT_EQ(l.get<std::string>("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(l.get<std::string>("tokenizer.ggml.pre"), "llama-bpe");
  const auto& tokens = l.get_array("tokenizer.ggml.tokens").items;
  ASSERT_EQ(tokens.size(), 128256u);
  std::set<std::string> unique;
  for (const auto& t : tokens) unique.insert(t.as_string());
  EXPECT_EQ(unique.size(), tokens.size());
  EXPECT_EQ(tokens[128000].as_string(), "<|begin_of_text|>");
  EXPECT_EQ(tokens[128009].as_string(), "<|eot_id|>");
  EXPECT_EQ(l.get<uint32_t>("tokenizer.ggml.eos_token_id"), 128009u);
  EXPECT_FALSE(l.get_array("tokenizer.ggml.merges").items.empty());

  const ml::gguf::Metadata q = synth_metadata(find_synth_preset("qwen2.5-0.5b"), q4);
  EXPECT_EQ(q.get<std::string>("general.architecture"), "qwen2");
  EXPECT_EQ(q.get<uint32_t>("qwen2.context_length"), 32768u);
  EXPECT_EQ(q.get<uint32_t>("qwen2.attention.head_count"), 14u);
  EXPECT_EQ(q.get<uint32_t>("qwen2.attention.head_count_kv"), 2u);
  EXPECT_FLOAT_EQ(q.get<float>("qwen2.rope.freq_base"), 1e6f);
  EXPECT_FLOAT_EQ(q.get<float>("qwen2.attention.layer_norm_rms_epsilon"), 1e-6f);
  EXPECT_EQ(q.get<std::string>("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(q.get_array("tokenizer.ggml.tokens").items.size(), 151936u);
  EXPECT_EQ(q.get_array("tokenizer.ggml.tokens").items[151645].as_string(), "<|im_end|>");
}

TEST(Synth, WeightsAreDeterministicPerSeedAndScaledByKind) {
  const SynthPreset& p = find_synth_preset("tiny-llama");
  const auto a = synth_tensors(p, 1), b = synth_tensors(p, 1), c = synth_tensors(p, 2);
  const auto values = [](const std::vector<TensorSource>& ts, const std::string& name) {
    for (const TensorSource& t : ts) {
      if (t.name != name) continue;
      int64_t n = 1;
      for (const int64_t d : t.ne) n *= d;
      std::vector<float> v(static_cast<size_t>(n));
      t.read_f32(v.data());
      return v;
    }
    return std::vector<float>{};
  };
  const auto w = values(a, "blk.0.ffn_up.weight");
  ASSERT_EQ(w.size(), 256u * 512u);
  EXPECT_EQ(w, values(b, "blk.0.ffn_up.weight"));
  EXPECT_NE(w, values(c, "blk.0.ffn_up.weight"));
  EXPECT_NE(w, values(a, "blk.0.ffn_gate.weight"));
  double sum = 0, sq = 0;
  for (const float x : w) sum += x, sq += double(x) * x;
  const double mean = sum / w.size(), std = std::sqrt(sq / w.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 1e-3);
  EXPECT_NEAR(std, 0.02, 1e-3);
  const auto norm = values(a, "blk.1.attn_norm.weight");
  double norm_mean = 0;
  for (const float x : norm) norm_mean += x / norm.size();
  EXPECT_NEAR(norm_mean, 1.0, 0.05);
}

TEST(Synth, UnknownPresetErrorListsTheValidOnes) {
  try {
    find_synth_preset("llama-9");
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("llama-9"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("qwen2.5-0.5b"), std::string::npos);
  }
}

TEST(Synth, TinyModelsLoadTokenizeAndGenerate) {
  TempDir dir;
  for (const char* name : {"tiny-llama", "tiny-qwen2"}) {
    SCOPED_TRACE(name);
    const std::string path = dir.file(std::string(name) + ".gguf");
    write_synth_model(find_synth_preset(name), parse_quant_type("Q8_0"), 0, path, {.n_threads = 1});
    runner::Engine e(path, {.n_threads = 1});
    const std::string text = "hello world, the synthetic model";
    const std::vector<int32_t> ids = e.tokenizer().encode(text, /*add_special=*/false);
    // Merges join letter pairs, so the text takes fewer tokens than bytes.
    EXPECT_LT(ids.size(), text.size());
    EXPECT_EQ(e.tokenizer().decode(ids), text);
    const std::vector<float> logits = e.logits(ids);
    ASSERT_EQ(logits.size(), ids.size() * 1024);  // every position
    for (const float x : logits) ASSERT_TRUE(std::isfinite(x));
    sample::Options o;
    o.temperature = 0;
    o.num_predict = 4;
    const runner::Stats stats = e.generate(ids, o, [](std::string_view) {});
    EXPECT_GE(stats.eval_count, 1);
  }
}

TEST(Synth, Q4KMWritesLlamaCppsMixture) {
  TempDir dir;
  const std::string path = dir.file("q4km.gguf");
  write_synth_model(find_synth_preset("tiny-llama"), parse_quant_type("Q4_K_M"), 0, path,
                    {.n_threads = 1});
  const auto f = ml::gguf::File::open(path);
  std::set<ml::DType> dtypes;
  for (const auto& t : f.tensors()) dtypes.insert(t.dtype);
  EXPECT_TRUE(dtypes.count(ml::DType::Q4_K));
  EXPECT_TRUE(dtypes.count(ml::DType::Q6_K));
  EXPECT_TRUE(dtypes.count(ml::DType::F32));
  EXPECT_EQ(f.tensor("blk.0.attn_norm.weight").dtype, ml::DType::F32);
  EXPECT_EQ(f.tensor("rope_freqs.weight").dtype, ml::DType::F32);
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").dtype, ml::DType::Q4_K);
  EXPECT_EQ(f.tensor("output.weight").dtype, ml::DType::Q6_K);
  EXPECT_EQ(f.metadata().get<uint32_t>("general.file_type"), 15u);
}

}  // namespace
}  // namespace corral::convert
