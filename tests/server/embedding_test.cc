// An embedding model (tiny-bert, created from its safetensors folder with -q F32) through the
// server: /api/embed, /api/embeddings and /v1/embeddings give reference.json's mean-pooled,
// normalized vectors, batches equal single inputs, truncate and dimensions behave as Ollama's,
// /api/show says "embedding", and generation requests get Ollama's 400.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ml/gguf/reader.h"
#include "running_server.h"
#include "server/generation.h"
#include "store/create.h"
#include "store/temp_store.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::server {
namespace {

using nlohmann::json;

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

class EmbeddingServer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in(corral::testing::testdata_path("reference/tiny-bert/reference.json"));
    cases_ = json::parse(in).at("cases");
  }
  void SetUp() override {
    ServerOptions o;
    o.scheduler.n_threads = 1;
    o.models = dir_.path() / "models";
    running_ = std::make_unique<RunningServer>(std::move(o));
    store::Modelfile mf;
    mf.from = corral::testing::testdata_path("reference/tiny-bert");
    store::CreateOptions co;
    co.quantize = "F32";
    store::create_model(running_->server().context().store, store::ModelName::parse("bert"), mf,
                        std::filesystem::current_path(), co);
  }
  httplib::Result post(const std::string& path, const json& body) {
    httplib::Client c("127.0.0.1", running_->port());
    c.set_read_timeout(60, 0);
    return c.Post(path, body.dump(), "application/json");
  }
  // A successful answer's JSON.
  json ok(const std::string& path, const json& body) {
    auto r = post(path, body);
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << r->body;
    return json::parse(r->body);
  }
  std::vector<float> mean(size_t i) { return cases_[i].at("mean_pooled_normalized"); }
  std::string text(size_t i) { return cases_[i].at("text"); }

  static inline json cases_;
  corral::testing::TempDir dir_;
  std::unique_ptr<RunningServer> running_;
};

TEST_F(EmbeddingServer, EmbedGivesTheMeanPooledNormalizedVectorsBatchedOrAlone) {
  json inputs = json::array();
  for (size_t i = 0; i < cases_.size(); ++i) inputs.push_back(text(i));
  const json batch = ok("/api/embed", {{"model", "bert"}, {"input", inputs}});
  ASSERT_EQ(batch["embeddings"].size(), cases_.size());
  int tokens = 0;
  for (size_t i = 0; i < cases_.size(); ++i) {
    tokens += static_cast<int>(cases_[i].at("input_ids").size());
    const std::vector<float> got = batch["embeddings"][i];
    EXPECT_LE(max_abs_diff(got, mean(i)), 1e-4f) << text(i);
    const json alone = ok("/api/embed", {{"model", "bert"}, {"input", text(i)}});
    EXPECT_LE(max_abs_diff(alone["embeddings"][0], got), 1e-6f) << text(i);
  }
  EXPECT_EQ(batch["prompt_eval_count"], tokens);

  const json legacy = ok("/api/embeddings", {{"model", "bert"}, {"prompt", text(1)}});
  EXPECT_LE(max_abs_diff(legacy["embedding"], mean(1)), 1e-4f);
  const json openai = ok("/v1/embeddings", {{"model", "bert"}, {"input", {text(0), text(2)}}});
  ASSERT_EQ(openai["data"].size(), 2u);
  EXPECT_LE(max_abs_diff(openai["data"][0]["embedding"], mean(0)), 1e-4f);
  EXPECT_LE(max_abs_diff(openai["data"][1]["embedding"], mean(2)), 1e-4f);
}

TEST_F(EmbeddingServer, DimensionsKeepsTheFirstValuesRenormalized) {
  for (const char* path : {"/api/embed", "/v1/embeddings"}) {
    const json j = ok(path, {{"model", "bert"}, {"input", text(1)}, {"dimensions", 16}});
    const std::vector<float> got =
        std::string(path) == "/api/embed" ? j["embeddings"][0] : j["data"][0]["embedding"];
    ASSERT_EQ(got.size(), 16u) << path;
    std::vector<float> want = mean(1);
    want.resize(16);
    double norm = 0;
    for (float x : want) norm += double(x) * x;
    for (float& x : want) x = static_cast<float>(x / std::sqrt(norm));
    EXPECT_LE(max_abs_diff(got, want), 1e-4f) << path;
  }
}

// tiny-bert's context is 128 positions: a longer input is cut to them (ending with [SEP]) unless
// truncate is false, which is a 400.
TEST_F(EmbeddingServer, TruncateCutsToTheContextOrRefusesWith400) {
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "the sun ";
  auto r = post("/api/embed", {{"model", "bert"}, {"input", long_text}, {"truncate", false}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
  EXPECT_EQ(json::parse(r->body)["error"], "the input length exceeds the context length");

  const json cut = ok("/api/embed", {{"model", "bert"}, {"input", long_text}});
  EXPECT_EQ(cut["prompt_eval_count"], 128);
  ASSERT_EQ(cut["embeddings"][0].size(), 64u);
  // Short inputs are untouched by truncate false.
  const json fits = ok("/api/embed", {{"model", "bert"}, {"input", text(0)}, {"truncate", false}});
  EXPECT_LE(max_abs_diff(fits["embeddings"][0], mean(0)), 1e-4f);
}

// Too many inputs in one request is a 400 before any work, on both routes; the server then
// answers a normal request.
TEST_F(EmbeddingServer, TooManyInputsIsA400AndTheServerGoesOn) {
  const json many = json::array();
  json inputs = many;
  for (int i = 0; i < 2049; ++i) inputs.push_back("a");
  for (const char* route : {"/api/embed", "/v1/embeddings"}) {
    auto r = post(route, {{"model", "bert"}, {"input", inputs}});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << route << ": " << r->body;
    EXPECT_NE(r->body.find("2049 inputs in one request (at most 2048)"), std::string::npos)
        << r->body;
  }
  const json fits = ok("/api/embed", {{"model", "bert"}, {"input", text(0)}});
  EXPECT_LE(max_abs_diff(fits["embeddings"][0], mean(0)), 1e-4f);
}

TEST_F(EmbeddingServer, ShowSaysEmbeddingAndGenerationIsA400) {
  const json show = ok("/api/show", {{"model", "bert"}});
  EXPECT_EQ(show["capabilities"], json::array({"embedding"}));
  EXPECT_EQ(show["model_info"]["general.architecture"], "bert");

  auto r = post("/api/generate", {{"model", "bert"}, {"prompt", "hello"}, {"stream", false}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"], "\"bert\" does not support generate");
  r = post("/api/chat", {{"model", "bert"},
                         {"messages", {{{"role", "user"}, {"content", "hello"}}}},
                         {"stream", false}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(json::parse(r->body)["error"], "\"bert\" does not support chat");
  r = post("/v1/chat/completions",
           {{"model", "bert"}, {"messages", {{{"role", "user"}, {"content", "hello"}}}}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("does not support chat"), std::string::npos) << r->body;
  // The server goes on embedding.
  EXPECT_LE(max_abs_diff(ok("/api/embed", {{"model", "bert"}, {"input", text(0)}})["embeddings"][0],
                         mean(0)),
            1e-4f);
}

// An input cut to the context keeps its start and the [SEP] the tokenizer put last (llama.cpp's
// bge vocabulary: [CLS] 101, [SEP] 102); truncate false refuses it.
TEST(EmbedTokens, TruncationKeepsTheStartAndTheTrailingSep) {
  const ml::gguf::File f =
      ml::gguf::File::open(corral::testing::testdata_path("vocab/ggml-vocab-bert-bge.gguf"));
  const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(f.metadata());
  std::string text;
  for (int i = 0; i < 40; ++i) text += "word" + std::to_string(i) + " ";
  const std::vector<int32_t> all = tok.encode(text);
  ASSERT_GT(all.size(), 16u);
  const std::vector<int32_t> cut = embed_tokens(tok, text, 16, true);
  ASSERT_EQ(cut.size(), 16u);
  EXPECT_EQ(cut.front(), 101);
  EXPECT_EQ(cut.back(), 102);
  EXPECT_EQ(std::vector<int32_t>(cut.begin(), cut.end() - 1),
            std::vector<int32_t>(all.begin(), all.begin() + 15));
  EXPECT_EQ(embed_tokens(tok, text, static_cast<int64_t>(all.size()), false), all);
  try {
    embed_tokens(tok, text, 16, false);
    FAIL() << "an input longer than the context was accepted with truncate false";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status, 400);
  }
}

}  // namespace
}  // namespace corral::server
