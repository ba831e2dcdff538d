// Decoding: ids back to text, whole and streamed token by token.
#include <gtest/gtest.h>

#include "ml/gguf/reader.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {
namespace {

bool valid_utf8(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    if (utf8_decode(s, pos) == 0xFFFD && s.substr(start, 3) != "\xEF\xBF\xBD") return false;
  }
  return true;
}

Tokenizer tok512() {
  return Tokenizer::from_sentencepiece(testing::testdata_path("tinystories260k/tok512.model"));
}

TEST(StreamingDecoder, HoldsBackCharactersSplitAcrossByteFallbackTokens) {
  const Tokenizer tok = tok512();
  const std::string text = "한국어 🦙 naïve";
  const std::vector<TokenId> ids = tok.encode(text, /*add_special=*/false);
  // In a 512-token vocabulary these characters exist only as <0xXX> pieces.
  int byte_tokens = 0;
  for (const TokenId id : ids) byte_tokens += tok.vocab().type(id) == TokenType::kByte;
  ASSERT_GE(byte_tokens, 13);

  StreamingDecoder stream(tok);
  std::string streamed;
  int held = 0;
  for (const TokenId id : ids) {
    const std::string part = stream.push(id);
    EXPECT_TRUE(valid_utf8(part)) << "emitted half a character after token " << id;
    if (part.empty()) ++held;
    streamed += part;
  }
  streamed += stream.flush();
  EXPECT_EQ(streamed, text);
  EXPECT_GE(held, 9);  // e.g. the first two bytes of each Hangul syllable produce nothing
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(StreamingDecoder, HoldsBackByteLevelPiecesOfAnEmoji) {
  const Tokenizer tok = Tokenizer::from_hf(testing::testdata_path("tokenizers/llama3"));
  const std::string text = "emoji: 🦙🔥 ok";
  const std::vector<TokenId> ids = tok.encode(text, false);
  StreamingDecoder stream(tok);
  std::string streamed;
  std::vector<std::string> parts;
  for (const TokenId id : ids) {
    parts.push_back(stream.push(id));
    EXPECT_TRUE(valid_utf8(parts.back()));
    streamed += parts.back();
  }
  streamed += stream.flush();
  EXPECT_EQ(streamed, text);
  // " 🦙" is spelled by three byte-level tokens (11410 = space + 2 bytes, 99, 247): only the
  // space is complete before the last one.
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids[2], 11410);
  EXPECT_EQ(parts[2], " ");
  EXPECT_EQ(parts[3], "");
  EXPECT_EQ(parts[4], "\xF0\x9F\xA6\x99");
}

TEST(StreamingDecoder, FlushReturnsAnIncompleteTail) {
  const Tokenizer tok = tok512();
  const TokenId first_byte = tok.vocab().byte_token(0xED);
  StreamingDecoder stream(tok);
  EXPECT_EQ(stream.push(first_byte), "");
  EXPECT_EQ(stream.flush(), "\xED");
}

TEST(Decode, SkipsOrRendersSpecialTokens) {
  const Tokenizer tok = Tokenizer::from_hf(testing::testdata_path("tokenizers/qwen3"));
  const auto ids = tok.encode("<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(tok.decode(ids), "<|im_start|>user\nHi<|im_end|>");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "user\nHi");
}

// decode(encode(text)) == text for every llama.cpp test string on the lossless vocabularies
// (byte-level BPE without clean-up, SentencePiece with byte fallback).
class GgufRoundTrip : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufRoundTrip, DecodeInvertsEncode) {
  const std::string path = testing::testdata_path("vocab/ggml-vocab-" + GetParam() + ".gguf");
  const auto file = ml::gguf::File::open(path);
  const Tokenizer tok = Tokenizer::from_gguf(file.metadata());
  for (const char* text :
       {"Hello world", " Hello World!", "  leading\ttabs\n\nand lines  ", "naïve café — “quotes” …",
        "日本語のテキスト", "🦙🔥👍🏽 ok", "3333333 + 1 = ?", "\xC2\xA0non-breaking"}) {
    EXPECT_EQ(tok.decode(tok.encode(text, false, false)), text) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(Vocab, GgufRoundTrip,
                         ::testing::Values("llama-spm", "deepseek-coder", "deepseek-llm"));

}  // namespace
}  // namespace corral::tokenizer
