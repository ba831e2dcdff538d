// Loaders reject bad input with a message naming the file and the defect; encoders survive any
// byte string.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>

#include "ml/gguf/metadata.h"
#include "ml/gguf/reader.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {
namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const VocabError& e) {
    return e.what();
  }
  return "(no VocabError)";
}

TEST(VocabErrors, GgufWithoutTokensNamesTheKey) {
  ml::gguf::Metadata md("model.gguf");
  md.set("tokenizer.ggml.model", "llama");
  const std::string msg = message_of([&] { load_gguf_vocab(md); });
  EXPECT_NE(msg.find("tokenizer.ggml.tokens"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.gguf"), std::string::npos) << msg;
}

TEST(VocabErrors, UnknownPreTokenizerIsRejected) {
  ml::gguf::Metadata md("model.gguf");
  md.set("tokenizer.ggml.model", "gpt2");
  md.set("tokenizer.ggml.pre", "no-such-pre");
  md.set("tokenizer.ggml.tokens",
         ml::gguf::Value::array(ml::gguf::ValueType::kString, {ml::gguf::Value("a")}));
  md.set("tokenizer.ggml.merges", ml::gguf::Value::array(ml::gguf::ValueType::kString, {}));
  const std::string msg = message_of([&] { load_gguf_vocab(md); });
  EXPECT_NE(msg.find("no-such-pre"), std::string::npos) << msg;
}

TEST(VocabErrors, TruncatedSentencePieceModelIsRejected) {
  std::ifstream in(testing::testdata_path("tinystories260k/tok512.model"), std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  ASSERT_GT(bytes.size(), 1000u);
  const auto path = std::filesystem::temp_directory_path() / "corral_truncated_tok512.model";
  std::ofstream(path, std::ios::binary) << bytes.substr(0, bytes.size() / 2 + 3);
  const std::string msg = message_of([&] { load_sentencepiece_vocab(path.string()); });
  std::filesystem::remove(path);
  EXPECT_NE(msg.find("invalid SentencePiece model"), std::string::npos) << msg;
}

TEST(Encode, MalformedUtf8IsSpelledWithBytes) {
  const Tokenizer spm =
      Tokenizer::from_sentencepiece(testing::testdata_path("tinystories260k/tok512.model"));
  const auto file = ml::gguf::File::open(testing::testdata_path("vocab/ggml-vocab-gpt-2.gguf"));
  const Tokenizer bpe = Tokenizer::from_gguf(file.metadata());
  const std::string bad = "ok \xFF\xC3 \xE2\x82 end\x80";
  for (const Tokenizer* tok : {&spm, &bpe}) {
    const auto ids = tok->encode(bad, false);
    ASSERT_FALSE(ids.empty());
    // Every byte survives the round trip, malformed ones included.
    EXPECT_EQ(tok->decode(ids, true).find("\xFF\xC3"), std::string("ok \xFF\xC3").size() - 2);
  }
}

}  // namespace
}  // namespace corral::tokenizer
