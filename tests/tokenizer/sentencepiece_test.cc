// tok512 (llama2.c's stories260K tokenizer) as a SentencePiece ModelProto and as the GGUF vocab
// llama.cpp's converter wrote from it.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "ml/gguf/reader.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {
namespace {

TEST(SentencePieceModel, Tok512MatchesSentencePieceEncodings) {
  const Tokenizer tok =
      Tokenizer::from_sentencepiece(testing::testdata_path("tinystories260k/tok512.model"));
  EXPECT_EQ(tok.vocab().size(), 512u);
  EXPECT_EQ(tok.vocab().bos, 1);
  EXPECT_EQ(tok.vocab().eos, 2);
  EXPECT_EQ(tok.vocab().unk, 0);
  std::ifstream in(testing::testdata_path("reference/tokenizers/tok512.json"));
  const auto ref = nlohmann::json::parse(in);
  ASSERT_FALSE(ref.at("cases").empty());
  for (const auto& c : ref.at("cases")) {
    const std::string text = c.at("text").get<std::string>();
    // SentencePiece itself does not read control tokens written in the text.
    EXPECT_EQ(tok.encode(text, /*add_special=*/false, /*parse_special=*/false),
              c.at("ids").get<std::vector<TokenId>>())
        << "'" << text << "'";
  }
}

TEST(SentencePieceModel, Tok512DecodesBackToNormalizedText) {
  const Tokenizer tok =
      Tokenizer::from_sentencepiece(testing::testdata_path("tinystories260k/tok512.model"));
  const std::string text = "Once upon a time, there was a little girl named Lily.";
  EXPECT_EQ(tok.decode(tok.encode(text), /*skip_special=*/true), text);
  // Byte fallback round trip: Korean and emoji exist only as <0xXX> pieces here.
  const std::string bytes = "한국어 🦙";
  EXPECT_EQ(tok.decode(tok.encode(bytes), /*skip_special=*/true), bytes);
}

TEST(SentencePieceGguf, Stories260KOnceUponATime) {
  const auto file =
      ml::gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  const Tokenizer tok = Tokenizer::from_gguf(file.metadata());
  EXPECT_EQ(tok.encode("Once upon a time"), (std::vector<TokenId>{1, 403, 407, 261, 378}));
  EXPECT_EQ(tok.decode(std::vector<TokenId>{1, 403, 407, 261, 378}, /*skip_special=*/true),
            "Once upon a time");
}

TEST(SentencePieceGguf, GgufAndModelFileAgree) {
  const auto file =
      ml::gguf::File::open(testing::testdata_path("tinystories260k/stories260K-f32.gguf"));
  const Tokenizer gguf = Tokenizer::from_gguf(file.metadata());
  const Tokenizer model =
      Tokenizer::from_sentencepiece(testing::testdata_path("tinystories260k/tok512.model"));
  for (const char* text : {"Lily and Tom went to the park. They saw a big dog",
                           "The little bird was sad because", "naïve café 🦙 3.14"}) {
    EXPECT_EQ(gguf.encode(text), model.encode(text)) << text;
  }
}

}  // namespace
}  // namespace corral::tokenizer
