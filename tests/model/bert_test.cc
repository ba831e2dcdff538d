// The bert architecture on tiny-bert (a random BertModel, WordPiece vocabulary of 400) converted
// by corral's converter: llama.cpp's names and keys, the sentence-transformers pooling config,
// the last hidden state against transformers', bidirectional attention that stays within each
// sequence of a batch, and the runner's pooled, normalized embeddings (mean and CLS).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "convert/convert.h"
#include "ml/gguf/reader.h"
#include "ml/gguf/writer.h"
#include "model/harness.h"
#include "runner/runner.h"
#include "store/temp_store.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::max_abs_diff;

std::string tiny_bert() { return corral::testing::testdata_path("reference/tiny-bert"); }

json reference_cases() {
  std::ifstream in(tiny_bert() + "/reference.json");
  return json::parse(in).at("cases");
}

// `dir` converted to a GGUF of `type` in `out_dir`; returns its path.
std::string convert_to(const std::string& dir, const fs::path& out_dir, const std::string& type) {
  const std::string out = (out_dir / ("tiny-bert-" + type + ".gguf")).string();
  convert::ConvertOptions options;
  options.type = type;
  options.write.n_threads = 1;
  convert::convert_hf(dir, out, options);
  return out;
}

// A copy of tiny-bert's folder (links to its files) with sentence-transformers modules.
fs::path sentence_transformers_copy(const fs::path& root, const json& modules,
                                    const json& pooling) {
  const fs::path dir = root / "st";
  fs::create_directories(dir / "1_Pooling");
  for (const char* f :
       {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}) {
    fs::create_symlink(fs::path(tiny_bert()) / f, dir / f);
  }
  std::ofstream(dir / "modules.json") << modules.dump();
  std::ofstream(dir / "1_Pooling" / "config.json") << pooling.dump();
  return dir;
}

json st_modules(bool normalize) {
  json m = json::array({{{"idx", 0},
                         {"name", "0"},
                         {"path", ""},
                         {"type", "sentence_transformers.models.Transformer"}},
                        {{"idx", 1},
                         {"name", "1"},
                         {"path", "1_Pooling"},
                         {"type", "sentence_transformers.models.Pooling"}}});
  if (normalize) {
    m.push_back({{"idx", 2},
                 {"name", "2"},
                 {"path", "2_Normalize"},
                 {"type", "sentence_transformers.models.Normalize"}});
  }
  return m;
}

json pooling_config(const char* mode) {
  json c = {{"word_embedding_dimension", 64},
            {"pooling_mode_cls_token", false},
            {"pooling_mode_mean_tokens", false},
            {"pooling_mode_max_tokens", false},
            {"pooling_mode_mean_sqrt_len_tokens", false}};
  c[mode] = true;
  return c;
}

// llama.cpp's names and keys (BertModel in convert_hf_to_gguf.py), the phantom-space WordPiece
// vocabulary, and a model that binds every tensor.
TEST(BertConvert, WritesLlamaCppNamesAndKeys) {
  corral::testing::TempDir tmp;
  const ml::gguf::File f = ml::gguf::File::open(convert_to(tiny_bert(), tmp.path(), "F16"));
  const auto& md = f.metadata();
  EXPECT_EQ(md.get_string("general.architecture"), "bert");
  EXPECT_EQ(md.get_u32("bert.block_count"), 2u);
  EXPECT_EQ(md.get_u32("bert.context_length"), 128u);
  EXPECT_EQ(md.get_u32("bert.embedding_length"), 64u);
  EXPECT_EQ(md.get_u32("bert.feed_forward_length"), 128u);
  EXPECT_EQ(md.get_u32("bert.attention.head_count"), 4u);
  EXPECT_FLOAT_EQ(md.get_f32("bert.attention.layer_norm_epsilon"), 1e-12f);
  EXPECT_FALSE(md.get_bool("bert.attention.causal"));
  // No sentence-transformers modules: mean pooling, as sentence-transformers pools a bare BERT.
  EXPECT_EQ(md.get_u32("bert.pooling_type"), 1u);
  EXPECT_FALSE(md.get_bool("bert.normalize_embeddings"));
  EXPECT_EQ(md.get_u32("tokenizer.ggml.token_type_count"), 2u);
  EXPECT_EQ(md.get_string("tokenizer.ggml.model"), "bert");
  const auto tokens = md.get_array_of<std::string>("tokenizer.ggml.tokens");
  ASSERT_EQ(tokens.size(), 400u);
  EXPECT_EQ(tokens[2], "[CLS]");
  EXPECT_EQ(md.get_u32("tokenizer.ggml.bos_token_id"), 2u);
  EXPECT_EQ(md.get_u32("tokenizer.ggml.seperator_token_id"), 3u);
  EXPECT_EQ(md.get_u32("tokenizer.ggml.cls_token_id"), 2u);
  size_t word_starts = 0;
  for (const std::string& t : tokens) {
    EXPECT_FALSE(t.starts_with("##")) << t;
    word_starts += t.starts_with("\xE2\x96\x81");
  }
  EXPECT_GT(word_starts, 0u);
  for (const char* name :
       {"token_embd.weight", "token_types.weight", "position_embd.weight", "token_embd_norm.bias",
        "blk.0.attn_q.bias", "blk.1.attn_output_norm.weight", "blk.1.ffn_up.weight",
        "blk.1.ffn_down.bias", "blk.1.layer_output_norm.bias"}) {
    EXPECT_NE(f.find_tensor(name), nullptr) << name;
  }
  EXPECT_EQ(f.find_tensor("token_types.weight")->shape(), (std::vector<int64_t>{64, 2}));
  EXPECT_EQ(f.find_tensor("position_embd.weight")->shape(), (std::vector<int64_t>{64, 128}));
  EXPECT_EQ(f.find_tensor("blk.0.ffn_up.weight")->shape(), (std::vector<int64_t>{64, 128}));
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
  const auto m = load(f);
  EXPECT_TRUE(m->unused_tensors().empty());
  EXPECT_FALSE(m->config().causal);
}

TEST(BertConvert, SentenceTransformersPoolingConfigPicksPoolingAndNormalize) {
  {
    corral::testing::TempDir tmp;
    const fs::path dir = sentence_transformers_copy(tmp.path(), st_modules(true),
                                                    pooling_config("pooling_mode_cls_token"));
    const ml::gguf::File f = ml::gguf::File::open(convert_to(dir, tmp.path(), "F32"));
    EXPECT_EQ(f.metadata().get_u32("bert.pooling_type"), 2u);
    EXPECT_TRUE(f.metadata().get_bool("bert.normalize_embeddings"));
  }
  {
    corral::testing::TempDir tmp;
    const fs::path dir = sentence_transformers_copy(tmp.path(), st_modules(false),
                                                    pooling_config("pooling_mode_mean_tokens"));
    const ml::gguf::File f = ml::gguf::File::open(convert_to(dir, tmp.path(), "F32"));
    EXPECT_EQ(f.metadata().get_u32("bert.pooling_type"), 1u);
    EXPECT_FALSE(f.metadata().get_bool("bert.normalize_embeddings"));
  }
  {
    // Max pooling has no GGUF form: refused, naming the pooling config.
    corral::testing::TempDir tmp;
    const fs::path dir = sentence_transformers_copy(tmp.path(), st_modules(false),
                                                    pooling_config("pooling_mode_max_tokens"));
    try {
      convert_to(dir, tmp.path(), "F32");
      FAIL() << "converted a max-pooling model";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find("1_Pooling/config.json"), std::string::npos) << e.what();
    }
  }
}

// The converted vocabulary encodes each case's text to transformers' input_ids ([CLS] ... [SEP]).
TEST(BertConvert, ConvertedVocabularyEncodesTheReferenceIds) {
  corral::testing::TempDir tmp;
  const ml::gguf::File f = ml::gguf::File::open(convert_to(tiny_bert(), tmp.path(), "F16"));
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(f.metadata());
  for (const json& c : reference_cases()) {
    const std::vector<int32_t> want = c.at("input_ids");
    EXPECT_EQ(tok.encode(c.at("text").get<std::string>()), want) << c.at("text");
  }
}

// The final hidden states [n_tokens][n_embd] of one batch: `seqs` are sequences 0, 1, ...
std::vector<std::vector<float>> hidden(const std::string& backend, Model& m,
                                       const std::vector<std::vector<int32_t>>& seqs) {
  testing::Runner r(backend);
  auto cache = m.make_cache({.num_ctx = 512, .dtype = ml::DType::F32});
  Batch batch;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (size_t i = 0; i < seqs[s].size(); ++i) {
      batch.add(seqs[s][i], static_cast<int32_t>(i), static_cast<int32_t>(s), true);
    }
  }
  ml::Graph g;
  ml::Tensor out = m.forward(g, batch, cache, Output::kEmbeddings);
  r.executor().compute(g, {out});
  const auto* p = static_cast<const float*>(out.data());
  std::vector<std::vector<float>> per_seq;
  for (const auto& s : seqs) {
    per_seq.emplace_back(p, p + s.size() * m.config().n_embd);
    p += s.size() * m.config().n_embd;
  }
  return per_seq;
}

class BertHiddenStates : public testing::OnBackend {};

// After conversion to F32, every case's last_hidden_state matches transformers' within 1e-4; the
// three cases in one batch give what each gives alone (no attention across sequences).
TEST_P(BertHiddenStates, LastHiddenStateMatchesTransformersAloneAndBatched) {
  corral::testing::TempDir tmp;
  const ml::gguf::File f = ml::gguf::File::open(convert_to(tiny_bert(), tmp.path(), "F32"));
  const auto m = load(f);
  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<float>> want;
  for (const json& c : reference_cases()) {
    seqs.push_back(c.at("input_ids").get<std::vector<int32_t>>());
    want.push_back(c.at("last_hidden_state").get<std::vector<float>>());
  }
  const auto together = hidden(GetParam(), *m, seqs);
  for (size_t s = 0; s < seqs.size(); ++s) {
    const auto alone = hidden(GetParam(), *m, {seqs[s]});
    ASSERT_EQ(alone[0].size(), want[s].size());
    EXPECT_LE(max_abs_diff(alone[0].data(), want[s].data(), want[s].size()), 1e-4f) << "case " << s;
    EXPECT_LE(max_abs_diff(together[s].data(), alone[0].data(), want[s].size()), 1e-5f)
        << "case " << s << " batched with the others";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, BertHiddenStates, ::testing::ValuesIn(testing::backend_names()),
                         [](const auto& info) { return info.param; });

// A copy of a GGUF with bert.pooling_type set to `pooling`.
std::string with_pooling(const std::string& path, uint32_t pooling, const fs::path& out_dir) {
  const ml::gguf::File f = ml::gguf::File::open(path);
  ml::gguf::Writer w(f.metadata());
  w.metadata().set("bert.pooling_type", pooling);
  for (const auto& t : f.tensors()) w.add_tensor(t.name, t.dtype, t.shape(), t.bytes());
  const std::string out = (out_dir / ("pooling-" + std::to_string(pooling) + ".gguf")).string();
  w.write(out);
  return out;
}

std::vector<std::vector<float>> embed_all(runner::Runner& r, const json& cases) {
  std::vector<std::shared_ptr<runner::Sequence>> seqs;
  for (const json& c : cases) {
    runner::SequenceRequest req;
    req.embed = true;
    req.prompt = c.at("input_ids").get<std::vector<int32_t>>();
    seqs.push_back(r.submit(std::move(req)));
  }
  std::vector<std::vector<float>> out;
  for (auto& s : seqs) out.push_back(s->result().embedding);
  return out;
}

// The runner pools as bert.pooling_type says and normalizes: mean and CLS give reference.json's
// vectors within 1e-4, whether the inputs run together (one batch) or one at a time.
TEST(BertEmbeddings, RunnerPoolsMeanAndClsAsTheFileSaysBatchedOrAlone) {
  corral::testing::TempDir tmp;
  const std::string f32 = convert_to(tiny_bert(), tmp.path(), "F32");
  const json cases = reference_cases();
  for (const auto& [pooling, key] :
       {std::pair<uint32_t, const char*>{1, "mean_pooled_normalized"}, {2, "cls_normalized"}}) {
    runner::Runner r(with_pooling(f32, pooling, tmp.path()),
                     {.num_ctx = 128, .num_parallel = 4, .n_threads = 1});
    EXPECT_EQ(r.pooling(), pooling == 1 ? runner::Pooling::kMean : runner::Pooling::kCls);
    const auto together = embed_all(r, cases);
    for (size_t i = 0; i < cases.size(); ++i) {
      const std::vector<float> want = cases[i].at(key);
      const auto alone = embed_all(r, json::array({cases[i]}));
      ASSERT_EQ(alone[0].size(), want.size());
      EXPECT_LE(max_abs_diff(alone[0].data(), want.data(), want.size()), 1e-4f)
          << key << " case " << i;
      EXPECT_LE(max_abs_diff(together[i].data(), alone[0].data(), want.size()), 1e-6f)
          << key << " case " << i << " batched";
    }
  }
}

// A prompt longer than num_batch still runs in one batch (an encoder sees its whole sequence):
// the same vector as with a large num_batch.
TEST(BertEmbeddings, PromptLongerThanTheBatchIsEvaluatedWhole) {
  corral::testing::TempDir tmp;
  const std::string f32 = convert_to(tiny_bert(), tmp.path(), "F32");
  const json c = reference_cases().back();
  runner::Runner small(f32, {.num_ctx = 128, .num_parallel = 2, .num_batch = 2, .n_threads = 1});
  runner::Runner large(f32, {.num_ctx = 128, .num_parallel = 2, .n_threads = 1});
  const auto a = embed_all(small, json::array({c, c}));
  const auto b = embed_all(large, json::array({c}));
  EXPECT_LE(max_abs_diff(a[0].data(), b[0].data(), b[0].size()), 1e-6f);
  EXPECT_LE(max_abs_diff(a[1].data(), b[0].data(), b[0].size()), 1e-6f);
}

TEST(BertEmbeddings, GenerationIsRefused) {
  corral::testing::TempDir tmp;
  runner::Runner r(convert_to(tiny_bert(), tmp.path(), "F32"), {.num_ctx = 128, .n_threads = 1});
  runner::SequenceRequest req;
  req.prompt = {2, 10, 3};
  EXPECT_THROW(r.submit(std::move(req)), std::invalid_argument);
}

}  // namespace
}  // namespace corral::model
