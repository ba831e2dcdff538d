// Tokenizer encode/decode throughput on 1 MiB of real text (the testdata README, repeated), for
// each tokenizer family: SentencePiece (llama-spm GGUF), byte-level BPE (GPT-2 GGUF, Llama 3
// and Qwen3 tokenizer.json), BPE with byte fallback over unsplit text (Gemma 3) and WordPiece
// (bert-bge GGUF). bytes/s counts input text bytes. Fixtures: $CORRAL_TESTDATA, else
// ../shared/testdata.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "ml/gguf/reader.h"
#include "tokenizer/tokenizer.h"

namespace {

using corral::tokenizer::Tokenizer;

std::string testdata(const std::string& relative) {
  const char* env = std::getenv("CORRAL_TESTDATA");
  return std::string(env != nullptr ? env : "../shared/testdata") + "/" + relative;
}

const std::string& corpus() {
  static const std::string text = [] {
    std::ifstream in(testdata("README.md"));
    const std::string base{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::string out;
    while (!base.empty() && out.size() < (1u << 20)) out += base;
    return out;
  }();
  return text;
}

const Tokenizer* load(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[name];
  if (!slot) {
    if (name.ends_with(".gguf")) {
      const auto file = corral::ml::gguf::File::open(testdata(name));
      slot = std::make_unique<Tokenizer>(Tokenizer::from_gguf(file.metadata()));
    } else {
      slot = std::make_unique<Tokenizer>(Tokenizer::from_hf(testdata(name)));
    }
  }
  return slot.get();
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const std::string& text = corpus();
  if (text.empty()) return state.SkipWithError("testdata README.md not found");
  const Tokenizer* tok = load(name);
  size_t n_tokens = 0;
  for (auto _ : state) {
    const auto ids = tok->encode(text, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const std::string& text = corpus();
  if (text.empty()) return state.SkipWithError("testdata README.md not found");
  const Tokenizer* tok = load(name);
  const auto ids = tok->encode(text, false);
  for (auto _ : state) {
    const std::string back = tok->decode(ids);
    benchmark::DoNotOptimize(back.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}

BENCHMARK_CAPTURE(BM_Encode, spm_llama, std::string("vocab/ggml-vocab-llama-spm.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_gpt2, std::string("vocab/ggml-vocab-gpt-2.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_llama3, std::string("tokenizers/llama3"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_qwen3, std::string("tokenizers/qwen3"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, bpe_gemma3, std::string("tokenizers/gemma3"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, wordpiece_bert, std::string("vocab/ggml-vocab-bert-bge.gguf"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, bpe_llama3, std::string("tokenizers/llama3"))
    ->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Decode, spm_llama, std::string("vocab/ggml-vocab-llama-spm.gguf"))
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
