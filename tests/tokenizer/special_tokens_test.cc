// Special and added tokens are cut out of the text before pre-tokenization.
#include <gtest/gtest.h>

#include "ml/gguf/reader.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {
namespace {

// A small SentencePiece-style vocabulary built by hand, to test the splitting rules alone.
Vocab tiny_spm_vocab() {
  Vocab v;
  v.model = Model::kSentencePiece;
  const std::vector<std::pair<const char*, TokenType>> tokens = {
      {"<unk>", TokenType::kUnknown},
      {"<s>", TokenType::kControl},
      {"</s>", TokenType::kControl},
      {"<|user|>", TokenType::kUserDefined},
      {"<|end|>", TokenType::kControl},
      {"\xE2\x96\x81", TokenType::kNormal},
      {"a", TokenType::kNormal},
      {"b", TokenType::kNormal},
      {"\xE2\x96\x81"
       "a",
       TokenType::kNormal},
      {"<|end", TokenType::kControl},
  };
  for (const auto& [text, type] : tokens) v.tokens.push_back({text, 0.0f, type});
  v.index("tiny");
  v.unk = 0, v.bos = 1, v.eos = 2;
  v.add_bos = true;
  v.add_space_prefix = true;
  v.escape_whitespaces = true;
  return v;
}

TEST(SpecialTokens, ControlTokensParsedOnlyWhenAsked) {
  const Tokenizer tok(tiny_spm_vocab());
  // parse_special: "<|end|>" (longest match, not "<|end") is one token; the text after a
  // special token gets the SentencePiece space prefix again.
  EXPECT_EQ(tok.encode("a<|end|>a", false, true), (std::vector<TokenId>{8, 4, 8}));
  // Without parse_special the control token is ordinary text, spelled by unknown bytes.
  const auto plain = tok.encode("a<|end|>", false, false);
  EXPECT_EQ(plain.front(), 8);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 4), 0);
}

TEST(SpecialTokens, UserDefinedTokensAlwaysSplitFirst) {
  const Tokenizer tok(tiny_spm_vocab());
  EXPECT_EQ(tok.encode("<|user|>a", false, false), (std::vector<TokenId>{3, 8}));
  EXPECT_EQ(tok.encode("<|user|>a", true, false), (std::vector<TokenId>{1, 3, 8}));
}

TEST(SpecialTokens, LstripAndRstripSwallowNeighbouringSpaces) {
  Vocab v = tiny_spm_vocab();
  v.tokens[4].lstrip = true;
  v.tokens[4].rstrip = true;
  const Tokenizer tok(std::move(v));
  EXPECT_EQ(tok.encode("a  <|end|>  a", false, true), (std::vector<TokenId>{8, 4, 8}));
}

TEST(SpecialTokens, Llama3HeaderTokensAndAddedBos) {
  const Tokenizer tok = Tokenizer::from_hf(testing::testdata_path("tokenizers/llama3"));
  EXPECT_EQ(tok.vocab().bos, 128000);
  EXPECT_EQ(tok.vocab().eot, 128009);
  EXPECT_EQ(tok.encode("<|start_header_id|>user<|end_header_id|>", false),
            (std::vector<TokenId>{128006, 882, 128007}));
  // Not parsed: the header token is spelled as text.
  EXPECT_EQ(tok.encode("<|start_header_id|>", false, false).front(), 27);  // "<"
}

TEST(SpecialTokens, GgufFlagsGiveBosEosAndSep) {
  const auto bert = ml::gguf::File::open(testing::testdata_path("vocab/ggml-vocab-bert-bge.gguf"));
  const Tokenizer wpm = Tokenizer::from_gguf(bert.metadata());
  const auto ids = wpm.encode("Hello world");
  ASSERT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 101);  // [CLS]
  EXPECT_EQ(ids.back(), 102);   // [SEP]
  EXPECT_EQ(wpm.decode(ids, /*skip_special=*/true), "hello world");

  const auto gpt2 = ml::gguf::File::open(testing::testdata_path("vocab/ggml-vocab-gpt-2.gguf"));
  const Tokenizer bpe = Tokenizer::from_gguf(gpt2.metadata());
  EXPECT_FALSE(bpe.vocab().add_bos);
  EXPECT_EQ(bpe.encode("Hello"), bpe.encode("Hello", false));
}

TEST(SpecialTokens, Phi3ChatTokensSwallowTheFollowingNewline) {
  const auto file = ml::gguf::File::open(testing::testdata_path("vocab/ggml-vocab-phi-3.gguf"));
  const Tokenizer tok = Tokenizer::from_gguf(file.metadata());
  // As llama.cpp: "<|user|>" (a control token) rstrips, and the text after it gets the prefix
  // space: the same ids as "<|user|>" followed by "Hello".
  EXPECT_EQ(tok.encode("<|user|>\nHello", false, true), (std::vector<TokenId>{32010, 15043}));
  EXPECT_EQ(tok.encode("Hello", false, false), std::vector<TokenId>{15043});
}

// Degenerate inputs that make naive merge loops quadratic (one 200k-character word, a 200k-space
// run) must still encode, and losslessly. Speed itself is measured by bench/tokenizer_bench.
TEST(LongInputs, DegenerateInputsEncodeAndRoundTrip) {
  const auto file = ml::gguf::File::open(testing::testdata_path("vocab/ggml-vocab-llama-spm.gguf"));
  const Tokenizer spm = Tokenizer::from_gguf(file.metadata());
  const auto gpt2_file =
      ml::gguf::File::open(testing::testdata_path("vocab/ggml-vocab-deepseek-coder.gguf"));
  const Tokenizer bpe = Tokenizer::from_gguf(gpt2_file.metadata());
  const std::string word(200000, 'a');
  const std::string spaces(200000, ' ');
  for (const Tokenizer* tok : {&spm, &bpe}) {
    for (const std::string* text : {&word, &spaces}) {
      const auto ids = tok->encode(*text, false);
      EXPECT_LT(ids.size(), text->size() / 2);
      EXPECT_EQ(tok->decode(ids), *text);
    }
  }
}

}  // namespace
}  // namespace corral::tokenizer
