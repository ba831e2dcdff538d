// A SentencePiece tokenizer.model whose normalizer collapses spaces (tok512: stories260K's) must
// encode the same from the GGUF converted from it, through tokenizer.ggml.remove_extra_whitespaces
// and tokenizer.ggml.add_space_prefix; a GGUF without the keys keeps llama.cpp's defaults.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "ml/gguf/reader.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::convert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tokenizer::TokenId;
using tokenizer::Tokenizer;

// Texts whose spaces and newlines a collapsing normalizer changes, and some it leaves alone.
const std::vector<std::string> kSpacedTexts = {
    "    four spaces",  "Hello  world",      "  leading",          "trailing   ", "a  b   c    d",
    " \n  x",           "line one\n\n  two", "tab\t  and  spaces", "   ",         "",
    "Once upon a time", " Once upon a time",
};

class SpmNormalizer : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() /
                        ("corral-spm-normalizer-" + std::to_string(::getpid())));
    fs::remove_all(*dir_);
    fs::create_directories(*dir_);
    ConvertOptions options;
    options.type = "F32";
    options.write.n_threads = 1;
    convert_hf(corral::testing::testdata_path("reference/stories260K"),
               (*dir_ / "stories.gguf").string(), options);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static ml::gguf::File converted() {
    return ml::gguf::File::open((*dir_ / "stories.gguf").string());
  }
  static fs::path* dir_;
};
fs::path* SpmNormalizer::dir_ = nullptr;

TEST_F(SpmNormalizer, ConverterWritesTheNormalizerKeys) {
  const ml::gguf::File f = converted();
  EXPECT_TRUE(f.metadata().get_bool("tokenizer.ggml.add_space_prefix"));
  EXPECT_TRUE(f.metadata().get_bool("tokenizer.ggml.remove_extra_whitespaces"));
}

TEST_F(SpmNormalizer, ConvertedGgufEncodesAsTheTokenizerModel) {
  const ml::gguf::File f = converted();
  const Tokenizer gguf = Tokenizer::from_gguf(f.metadata());
  const Tokenizer model = Tokenizer::from_sentencepiece(
      corral::testing::testdata_path("reference/stories260K/tokenizer.model"));
  for (const std::string& text : kSpacedTexts) {
    EXPECT_EQ(gguf.encode(text, false), model.encode(text, false)) << '"' << text << '"';
    EXPECT_EQ(gguf.encode(text, true), model.encode(text, true)) << '"' << text << '"';
  }
  // "    four spaces" loses its leading run, as SentencePiece's normalizer strips it.
  EXPECT_EQ(gguf.encode("    four spaces", false), gguf.encode("four spaces", false));
}

TEST_F(SpmNormalizer, ConvertedGgufGivesSentencePiecesOwnIds) {
  const ml::gguf::File f = converted();
  const Tokenizer gguf = Tokenizer::from_gguf(f.metadata());
  std::ifstream in(corral::testing::testdata_path("reference/tokenizers/tok512.json"));
  const json cases = json::parse(in).at("cases");
  int spaced = 0;
  for (const json& c : cases) {
    const std::string text = c.at("text");
    const std::vector<TokenId> want = c.at("ids");
    EXPECT_EQ(gguf.encode(text, false), want) << '"' << text << '"';
    if (text.find("  ") != std::string::npos || (!text.empty() && text.front() == ' ')) ++spaced;
  }
  EXPECT_GE(spaced, 3);  // the fixture does exercise runs of spaces and leading spaces
}

// llama.cpp's own conversion of the same model has neither key: spaces are kept, as before.
TEST(SpmNormalizerDefaults, GgufWithoutTheKeysKeepsEverySpace) {
  const ml::gguf::File f =
      ml::gguf::File::open(corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  ASSERT_FALSE(f.metadata().contains("tokenizer.ggml.remove_extra_whitespaces"));
  ASSERT_FALSE(f.metadata().contains("tokenizer.ggml.add_space_prefix"));
  const Tokenizer gguf = Tokenizer::from_gguf(f.metadata());
  EXPECT_NE(gguf.encode("    four spaces", false), gguf.encode("four spaces", false));
  EXPECT_NE(gguf.encode("Hello  world", false), gguf.encode("Hello world", false));
  // The dummy prefix stays on by default for "llama" vocabularies.
  EXPECT_EQ(gguf.encode("Once upon a time", false), (std::vector<TokenId>{403, 407, 261, 378}));
}

}  // namespace
}  // namespace corral::convert
