// Replays the committed fuzz corpus (tests/fuzz/corpus: seeds from make_corpus.cc plus the inputs
// fuzz_gguf found interesting) through the reader on every build, so that a regression on any of
// them shows up without clang or libFuzzer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "ml/gguf/reader.h"

namespace corral::ml::gguf {
namespace {

TEST(GgufFuzzCorpus, EveryInputParsesOrFailsCleanly) {
  const std::filesystem::path dir = std::filesystem::path(CORRAL_SOURCE_DIR) / "tests/fuzz/corpus";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  size_t n_inputs = 0, n_parsed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    SCOPED_TRACE(entry.path().string());
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in),
                                     std::istreambuf_iterator<char>()};
    ++n_inputs;
    try {
      const File f = File::parse(bytes, entry.path().filename().string());
      ++n_parsed;
      for (const TensorInfo& t : f.tensors()) {
        ASSERT_GE(t.data, bytes.data() + f.data_offset());
        ASSERT_LE(t.data + t.nbytes, bytes.data() + bytes.size());
      }
    } catch (const FormatError& e) {
      EXPECT_NE(std::string(e.what()).find("byte offset"), std::string::npos) << e.what();
    }
  }
  EXPECT_GE(n_inputs, 8u);
  // The seeds are valid files; they must keep parsing.
  EXPECT_GE(n_parsed, 8u);
}

TEST(GgufFuzzCorpus, SeedsParse) {
  const std::filesystem::path dir = std::filesystem::path(CORRAL_SOURCE_DIR) / "tests/fuzz/corpus";
  for (const char* seed : {"seed-empty", "seed-scalars", "seed-scalars-v2", "seed-arrays",
                           "seed-dtypes", "seed-align64", "seed-align1", "seed-mini-llama"}) {
    SCOPED_TRACE(seed);
    std::ifstream in(dir / (std::string(seed) + ".gguf"), std::ios::binary);
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in),
                                     std::istreambuf_iterator<char>()};
    ASSERT_FALSE(bytes.empty());
    EXPECT_NO_THROW(File::parse(bytes, seed));
  }
}

}  // namespace
}  // namespace corral::ml::gguf
