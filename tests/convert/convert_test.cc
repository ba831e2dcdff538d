// The Hugging Face converter against transformers' outputs (reference.json beside each
// checkpoint) and against llama.cpp's own conversion of stories260K.
#include "convert/convert.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "convert/tokenizer_json.h"
#include "ml/gguf/reader.h"
#include "ml/quant/quant.h"
#include "model/harness.h"
#include "runner/engine.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::convert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A fresh folder under the system temp dir, removed with the object.
struct TempDir {
  fs::path path;
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("corral-convert-") + info->test_suite_name() + "-" +
                       info->name() + "-" + std::to_string(::getpid());
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path = fs::temp_directory_path() / name;
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

json read_json(const std::string& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::vector<float> to_f32(const ml::gguf::TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  const int64_t row = t.ne[0];
  const size_t row_bytes = ml::row_size(t.dtype, row);
  for (int64_t r = 0; r < t.n_elements() / row; ++r) {
    ml::quant::dequantize_row(t.dtype, t.data + static_cast<size_t>(r) * row_bytes,
                              out.data() + r * row, row);
  }
  return out;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

ConvertOptions options_for(const char* type) {
  ConvertOptions options;
  options.type = type;
  options.write.n_threads = 1;
  return options;
}

struct Case {
  const char* folder;
  const char* type;
  float tolerance;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.folder << " as " << c.type; }

class ConvertHfReference : public ::testing::TestWithParam<Case> {};

TEST_P(ConvertHfReference, ConvertedFileGivesTransformersLogitsTokensAndGreedyIds) {
  const Case& p = GetParam();
  const std::string dir = corral::testing::testdata_path(std::string("reference/") + p.folder);
  TempDir tmp;
  const std::string out = tmp / "model.gguf";
  convert_hf(dir, out, options_for(p.type));

  runner::Engine engine(out, {.n_threads = 1});
  const json reference = read_json(dir + "/reference.json");
  const bool exact = std::string(p.type) == "F32";
  const ml::gguf::File file = ml::gguf::File::open(out);
  const auto m = model::load(file);
  EXPECT_TRUE(m->unused_tensors().empty());
  model::testing::Runner r("reference");
  for (const json& c : reference.at("cases")) {
    const std::vector<int32_t> ids = c.at("input_ids");
    if (c.contains("text")) {
      EXPECT_EQ(engine.tokenize(c.at("text").get<std::string>()), ids) << c.at("text");
    }
    const std::vector<float> want = c.at("logits");
    const std::vector<float> got = engine.logits(ids);
    ASSERT_EQ(got.size(), want.size());
    const size_t n_vocab = want.size() / ids.size();
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_LE(max_abs_diff(&got[i * n_vocab], &want[i * n_vocab], n_vocab), p.tolerance)
          << c.value("name", "") << " position " << i;
    }
    if (!exact) continue;
    // Cached decoding (one token at a time after the prompt, on the reference backend) up to the
    // first step whose top-2 margin is too small to decide.
    const std::vector<int32_t> greedy_want = c.at("greedy_ids");
    const std::vector<float> margin = c.at("greedy_top2_margin");
    size_t decidable = 0;
    while (decidable < margin.size() && margin[decidable] >= 1e-3f) ++decidable;
    auto cache = m->make_cache({.num_ctx = 256, .dtype = ml::DType::F32});
    const std::vector<int32_t> greedy_got =
        model::testing::greedy(r, *m, cache, ids, static_cast<int>(greedy_want.size()));
    EXPECT_EQ(std::vector<int32_t>(greedy_got.begin(), greedy_got.begin() + decidable),
              std::vector<int32_t>(greedy_want.begin(), greedy_want.begin() + decidable))
        << c.value("name", "") << ": first " << decidable << " decidable steps";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Checkpoints, ConvertHfReference,
    ::testing::Values(Case{"stories260K", "F32", 1e-4f}, Case{"tiny-llama3", "F32", 1e-4f},
                      Case{"tiny-qwen2", "F32", 1e-4f}, Case{"small-llama-256", "F32", 1e-4f},
                      Case{"stories260K", "F16", 2e-2f}, Case{"tiny-llama3", "F16", 2e-2f},
                      Case{"tiny-qwen2", "BF16", 2e-2f}, Case{"small-llama-256", "BF16", 2e-2f},
                      Case{"small-llama-256", "F16", 2e-2f}, Case{"tiny-qwen3", "F32", 1e-4f},
                      Case{"tiny-qwen3", "F16", 2e-2f}, Case{"tiny-qwen3", "BF16", 2e-2f},
                      Case{"tiny-gemma3", "F32", 1e-4f}, Case{"tiny-gemma3", "F16", 2e-2f},
                      Case{"tiny-gemma3", "BF16", 2e-2f}));

// llama.cpp converted the same trained weights from llama2.c's checkpoint; the HF folder has them
// in transformers' layout, so equal tensors prove the renaming, the ggml shapes and the Q/K
// permutation.
TEST(ConvertHf, Stories260KEqualsLlamaCppConversion) {
  TempDir tmp;
  const std::string out = tmp / "stories.gguf";
  convert_hf(corral::testing::testdata_path("reference/stories260K"), out, options_for("F32"));
  const ml::gguf::File ours = ml::gguf::File::open(out);
  const ml::gguf::File theirs =
      ml::gguf::File::open(corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf"));

  // The HF checkpoint ties the output to the embedding (transformers saves no lm_head), so, as
  // llama.cpp's convert_hf_to_gguf.py does, no output.weight is written; the llama2.c converter
  // wrote a copy. It must equal token_embd.
  for (const auto& t : theirs.tensors()) {
    const std::string name = t.name == "output.weight" ? "token_embd.weight" : t.name;
    const ml::gguf::TensorInfo* o = ours.find_tensor(name);
    ASSERT_NE(o, nullptr) << name;
    EXPECT_EQ(o->shape(), t.shape()) << t.name;
    EXPECT_EQ(to_f32(*o), to_f32(t)) << t.name;
  }
  EXPECT_EQ(ours.tensors().size(), theirs.tensors().size() - 1);

  // Keys both files have must agree, except:
  const std::set<std::string> skipped = {
      // The llama2.c converter names every model "llama"; ours is the folder's name.
      "general.name",
  };
  int compared = 0;
  for (const auto& [key, value] : theirs.metadata()) {
    const ml::gguf::Value* mine = ours.metadata().find(key);
    if (mine == nullptr || skipped.count(key)) continue;
    ++compared;
    EXPECT_EQ(*mine, value) << key << ": ours " << mine->type_string();
  }
  EXPECT_GE(compared, 15);
}

TEST(ConvertHf, ShardedCheckpointConvertsToTheSameFile) {
  const std::string src = corral::testing::testdata_path("reference/tiny-qwen2");
  TempDir tmp;
  const fs::path sharded = tmp.path / "sharded";
  fs::create_directories(sharded);
  for (const auto& e : fs::directory_iterator(src)) {
    if (e.path().filename() != "model.safetensors") fs::copy(e.path(), sharded);
  }
  // Split model.safetensors into two shards, rewriting headers and offsets.
  std::ifstream in(src + "/model.safetensors", std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  const json header = json::parse(bytes.substr(8, n));
  json shard_headers[2] = {json::object(), json::object()};
  std::string shard_data[2];
  json weight_map = json::object();
  int i = 0;
  for (const auto& [name, t] : header.items()) {
    if (name == "__metadata__") continue;
    const int s = i++ % 2;
    const size_t b = t["data_offsets"][0], e = t["data_offsets"][1];
    json entry = t;
    entry["data_offsets"] = {shard_data[s].size(), shard_data[s].size() + (e - b)};
    shard_data[s] += bytes.substr(8 + n + b, e - b);
    shard_headers[s][name] = entry;
    weight_map[name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
  }
  for (int s = 0; s < 2; ++s) {
    const std::string h = shard_headers[s].dump();
    const uint64_t len = h.size();
    std::ofstream f(sharded / ("model-0000" + std::to_string(s + 1) + "-of-00002.safetensors"),
                    std::ios::binary);
    f.write(reinterpret_cast<const char*>(&len), 8);
    f << h << shard_data[s];
  }
  std::ofstream(sharded / "model.safetensors.index.json")
      << json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump();

  EXPECT_TRUE(is_hf_folder(sharded.string()));
  convert_hf(src, tmp / "single.gguf", options_for("F32"));
  convert_hf(sharded.string(), tmp / "sharded.gguf", options_for("F32"));
  const ml::gguf::File a = ml::gguf::File::open(tmp / "single.gguf");
  const ml::gguf::File b = ml::gguf::File::open(tmp / "sharded.gguf");
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const ml::gguf::TensorInfo* u = b.find_tensor(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    EXPECT_EQ(to_f32(t), to_f32(*u)) << t.name;
  }
}

TEST(ConvertHf, EveryEndOfGenerationIdOfGenerationConfigStopsTheEngine) {
  const std::string src = corral::testing::testdata_path("reference/tiny-llama3");
  TempDir tmp;
  const fs::path dir = tmp.path / "model";
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src)) fs::copy(e.path(), dir);
  fs::permissions(dir / "generation_config.json", fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [4, 1, 3]})";
  convert_hf(dir.string(), tmp / "m.gguf", options_for("F32"));
  const ml::gguf::File f = ml::gguf::File::open(tmp / "m.gguf");
  EXPECT_EQ(f.metadata().get_integer("tokenizer.ggml.eos_token_id"), 4);
  EXPECT_EQ(f.metadata().get_array_of<int32_t>(kEosTokenIdsKey), (std::vector<int32_t>{4, 1, 3}));
  runner::Engine engine(tmp / "m.gguf", {.n_threads = 1});
  EXPECT_EQ(engine.tokenizer().vocab().eos_ids, (std::vector<int32_t>{4, 1, 3}));
}

TEST(ConvertHf, MetadataHasLlamaCppKeys) {
  TempDir tmp;
  convert_hf(corral::testing::testdata_path("reference/tiny-llama3"), tmp / "m.gguf",
             options_for("F16"));
  const ml::gguf::File f = ml::gguf::File::open(tmp / "m.gguf");
  const auto& md = f.metadata();
  EXPECT_EQ(md.get_string("general.architecture"), "llama");
  EXPECT_EQ(md.get_u32("general.file_type"), 1u);
  EXPECT_EQ(md.get_u32("llama.block_count"), 2u);
  EXPECT_EQ(md.get_u32("llama.context_length"), 256u);
  EXPECT_EQ(md.get_u32("llama.embedding_length"), 64u);
  EXPECT_EQ(md.get_u32("llama.feed_forward_length"), 128u);
  EXPECT_EQ(md.get_u32("llama.attention.head_count"), 4u);
  EXPECT_EQ(md.get_u32("llama.attention.head_count_kv"), 2u);
  EXPECT_EQ(md.get_f32("llama.rope.freq_base"), 500000.0f);
  EXPECT_EQ(md.get_f32("llama.attention.layer_norm_rms_epsilon"), 1e-5f);
  EXPECT_EQ(md.get_u32("llama.attention.key_length"), 16u);
  EXPECT_EQ(md.get_u32("llama.vocab_size"), 400u);
  EXPECT_EQ(md.get_u32("llama.rope.dimension_count"), 16u);
  EXPECT_FALSE(md.contains("llama.rope.scaling.type"));  // llama3 scaling is the tensor
  EXPECT_EQ(md.get_string("tokenizer.ggml.model"), "gpt2");
  EXPECT_EQ(md.get_string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_GT(md.get_array("tokenizer.ggml.merges").items.size(), 0u);
  EXPECT_TRUE(md.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_TRUE(md.contains("tokenizer.chat_template"));
  // Tied: no output.weight; rope_freqs first and in f32 whatever the type.
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  ASSERT_FALSE(f.tensors().empty());
  EXPECT_EQ(f.tensors()[0].name, "rope_freqs.weight");
  EXPECT_EQ(f.tensors()[0].dtype, ml::DType::F32);
  EXPECT_EQ(f.tensors()[0].shape(), (std::vector<int64_t>{8}));
}

TEST(ConvertHf, LegacyRopeThetaAndScalingKeysAreRead) {
  const std::string src = corral::testing::testdata_path("reference/tiny-qwen2");
  TempDir tmp;
  const fs::path dir = tmp.path / "model";
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src)) fs::copy(e.path(), dir);
  json config = read_json(src + "/config.json");
  config.erase("rope_parameters");
  config["rope_theta"] = 12345.0;
  config["rope_scaling"] = {{"type", "yarn"},
                            {"factor", 4.0},
                            {"original_max_position_embeddings", 64},
                            {"beta_fast", 32.0}};
  fs::permissions(dir / "config.json", fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(dir / "config.json") << config.dump();
  convert_hf(dir.string(), tmp / "m.gguf", options_for("F32"));
  const ml::gguf::File f = ml::gguf::File::open(tmp / "m.gguf");
  const auto& md = f.metadata();
  EXPECT_EQ(md.get_f32("qwen2.rope.freq_base"), 12345.0f);
  EXPECT_EQ(md.get_string("qwen2.rope.scaling.type"), "yarn");
  EXPECT_EQ(md.get_f32("qwen2.rope.scaling.factor"), 4.0f);
  EXPECT_EQ(md.get_u32("qwen2.rope.scaling.original_context_length"), 64u);
  EXPECT_EQ(md.get_f32("qwen2.rope.scaling.yarn_beta_fast"), 32.0f);
  EXPECT_FALSE(md.contains("qwen2.vocab_size"));
  EXPECT_TRUE(f.find_tensor("blk.1.attn_k.bias") != nullptr);
}

// A SentencePiece model exported as tokenizer.json (BPE with byte fallback, no tokenizer.model
// beside it) becomes GGUF's score-driven "llama" tokenizer and must encode as the conversion of
// the SentencePiece model itself does (scores there are SentencePiece's, here minus merge ranks).
TEST(ConvertHf, ByteFallbackBpeTokenizerEncodesAsSentencePiece) {
  const std::string src = corral::testing::testdata_path("reference/stories260K");
  TempDir tmp;
  const fs::path dir = tmp.path / "model";
  fs::create_directories(dir);
  for (const auto& e : fs::directory_iterator(src)) {
    if (e.path().filename() != "tokenizer.model") fs::copy(e.path(), dir);
  }
  convert_hf(dir.string(), tmp / "bpe.gguf", options_for("F32"));
  convert_hf(src, tmp / "spm.gguf", options_for("F32"));
  const ml::gguf::File bpe_file = ml::gguf::File::open(tmp / "bpe.gguf");
  const ml::gguf::File spm_file = ml::gguf::File::open(tmp / "spm.gguf");
  EXPECT_EQ(bpe_file.metadata().get_string("tokenizer.ggml.model"), "llama");
  EXPECT_EQ(bpe_file.metadata().at("tokenizer.ggml.tokens"),
            spm_file.metadata().at("tokenizer.ggml.tokens"));
  EXPECT_EQ(bpe_file.metadata().at("tokenizer.ggml.token_type"),
            spm_file.metadata().at("tokenizer.ggml.token_type"));
  const auto bpe = tokenizer::Tokenizer::from_gguf(bpe_file.metadata());
  // tokenizer.json has no SentencePiece normalizer: compare with the spaces kept (that
  // tokenizer.model collapses them is spm_normalizer_test.cc's subject).
  ml::gguf::Metadata spm_md = spm_file.metadata();
  EXPECT_TRUE(spm_md.get_bool("tokenizer.ggml.remove_extra_whitespaces"));
  spm_md.set("tokenizer.ggml.remove_extra_whitespaces", false);
  const auto spm = tokenizer::Tokenizer::from_gguf(spm_md);
  const json cases =
      read_json(corral::testing::testdata_path("reference/tokenizers/tok512.json")).at("cases");
  for (const json& c : cases) {
    const std::string text = c.at("text");
    EXPECT_EQ(bpe.encode(text, false), spm.encode(text, false)) << text;
  }
}

}  // namespace
}  // namespace corral::convert
