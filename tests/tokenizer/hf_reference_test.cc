// Hugging Face tokenizers' own encodings (reference/tokenizers/*.json, computed by tokenizers
// 0.23 through transformers 5.17) and the input_ids of the reference checkpoints.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {
namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

class TokenizerHfReference : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerHfReference, EncodeAndDecodeMatchTransformers) {
  const std::string name = GetParam();
  const Tokenizer tok = Tokenizer::from_hf(testing::testdata_path("tokenizers/" + name));
  const auto ref = read_json(testing::testdata_path("reference/tokenizers/" + name + ".json"));
  ASSERT_FALSE(ref.at("cases").empty());
  for (const auto& c : ref.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    const auto ids = c.at("ids").get<std::vector<TokenId>>();
    EXPECT_EQ(tok.encode(text, /*add_special=*/false), ids) << name << ": '" << text << "'";
    EXPECT_EQ(tok.encode(text, /*add_special=*/true),
              c.at("ids_with_specials").get<std::vector<TokenId>>())
        << name << ": '" << text << "'";
    EXPECT_EQ(tok.decode(ids), c.at("decoded").get<std::string>()) << name << ": '" << text << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, TokenizerHfReference,
                         ::testing::Values("llama3", "qwen3", "gemma3"));

class CheckpointReference : public ::testing::TestWithParam<std::string> {};

TEST_P(CheckpointReference, InputIdsMatchTransformers) {
  const std::string dir = testing::testdata_path("reference/" + GetParam());
  const Tokenizer tok = Tokenizer::from_hf(dir);
  const auto ref = read_json(dir + "/reference.json");
  int checked = 0;
  for (const auto& c : ref.at("cases")) {
    if (!c.contains("text")) continue;
    const std::string text = c.at("text").get<std::string>();
    EXPECT_EQ(tok.encode(text), c.at("input_ids").get<std::vector<TokenId>>())
        << GetParam() << ": '" << text << "'";
    ++checked;
  }
  EXPECT_GT(checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, CheckpointReference,
                         ::testing::Values("tiny-bert", "tiny-llama3", "tiny-qwen2", "stories260K",
                                           "tiny-gemma3", "tiny-qwen3"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace corral::tokenizer
