// llama.cpp's tokenizer test vectors (test-tokenizer-0): each .inp holds test strings, each
// followed by the line "__ggml_vocab_test__"; the .out holds one line of expected ids per string
// (encoded without BOS, special tokens in the text not parsed).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "ml/gguf/reader.h"
#include "testdata.h"
#include "tokenizer/tokenizer.h"

namespace corral::tokenizer {
namespace {

struct VectorCase {
  std::string text;
  std::vector<TokenId> ids;
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Splits exactly as test-tokenizer-0 does: on "\n__ggml_vocab_test__\n", nothing else stripped.
std::vector<VectorCase> read_vectors(const std::string& stem) {
  const std::string inp = read_file(stem + ".inp");
  const std::string outp = read_file(stem + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t next = inp.find(sep, pos);
    if (next == std::string::npos) {
      texts.push_back(inp.substr(pos));
      break;
    }
    texts.push_back(inp.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::vector<VectorCase> cases;
  std::istringstream lines(outp);
  std::string line;
  for (size_t i = 0; std::getline(lines, line); ++i) {
    VectorCase c;
    c.text = i < texts.size() ? texts[i] : std::string();
    std::istringstream ids(line);
    for (TokenId id; ids >> id;) c.ids.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), texts.size()) << stem;
  return cases;
}

void expect_vectors(const Tokenizer& tok, const std::string& stem) {
  const auto cases = read_vectors(stem);
  ASSERT_FALSE(cases.empty()) << stem;
  for (const VectorCase& c : cases) {
    EXPECT_EQ(tok.encode(c.text, /*add_special=*/false, /*parse_special=*/false), c.ids)
        << stem << "\ntext: '" << c.text << "'";
  }
}

class GgufVocabVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(GgufVocabVectors, EncodeMatchesLlamaCppTestVectors) {
  const std::string path = testing::testdata_path("vocab/ggml-vocab-" + GetParam() + ".gguf");
  const auto file = ml::gguf::File::open(path);
  const Tokenizer tok = Tokenizer::from_gguf(file.metadata());
  expect_vectors(tok, path);
}

INSTANTIATE_TEST_SUITE_P(Vocab, GgufVocabVectors,
                         ::testing::Values("bert-bge", "deepseek-coder", "deepseek-llm", "falcon",
                                           "gpt-2", "llama-spm", "mpt", "phi-3", "refact",
                                           "starcoder"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

// Vectors whose GGUF files are not in the fixtures: the same vocabularies from the real
// tokenizer.json files. deepseek-r1-qwen uses Qwen2.5's BPE vocabulary and pre-tokenizer (llama.cpp
// maps it to the qwen2 regex); its vectors are identical to qwen2's and run on the Qwen3 files.
struct HfVectorsCase {
  const char* vectors;
  const char* tokenizer_dir;
  const char* pre;
};

class HfVocabVectors : public ::testing::TestWithParam<HfVectorsCase> {};

TEST_P(HfVocabVectors, EncodeMatchesLlamaCppTestVectors) {
  const HfVectorsCase& c = GetParam();
  const Tokenizer tok = Tokenizer::from_hf(testing::testdata_path(c.tokenizer_dir));
  EXPECT_EQ(tok.vocab().pre, c.pre);
  // Only the .inp/.out pair exists: locate the stem through the .inp file.
  const std::string inp = testing::testdata_path(std::string("vocab/vectors-only/ggml-vocab-") +
                                                 c.vectors + ".gguf.inp");
  expect_vectors(tok, inp.substr(0, inp.size() - std::string_view(".inp").size()));
}

INSTANTIATE_TEST_SUITE_P(
    Vocab, HfVocabVectors,
    ::testing::Values(HfVectorsCase{"llama-bpe", "tokenizers/llama3", "llama-bpe"},
                      HfVectorsCase{"qwen2", "tokenizers/qwen3", "qwen2"},
                      HfVectorsCase{"deepseek-r1-qwen", "tokenizers/qwen3", "qwen2"}),
    [](const auto& info) {
      std::string name = info.param.vectors;
      for (char& c : name) {
        if (c == '-') c = '_';
      }
      return name;
    });

}  // namespace
}  // namespace corral::tokenizer
