// Grammar-constrained sampling cost over the Qwen3 vocabulary (151k tokens): mask() from states
// typical of JSON output (inside a string, after a key, inside a number, between members), and
// accepts() of one token. Fixtures: $CORRAL_TESTDATA, else ../shared/testdata.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "sample/grammar.h"
#include "tokenizer/tokenizer.h"

namespace {

using corral::sample::Grammar;
using corral::sample::GrammarMatcher;
using corral::sample::TokenPieces;

std::string testdata(const std::string& relative) {
  const char* env = std::getenv("CORRAL_TESTDATA");
  return std::string(env != nullptr ? env : "../shared/testdata") + "/" + relative;
}

const std::shared_ptr<const TokenPieces>& qwen_pieces() {
  static const std::shared_ptr<const TokenPieces> pieces = [] {
    const auto tok = corral::tokenizer::Tokenizer::from_hf(testdata("tokenizers/qwen3"));
    return std::make_shared<const TokenPieces>(tok);
  }();
  return pieces;
}

// A matcher that has read `prefix` (fed as single-byte tokens).
GrammarMatcher matcher_after(const std::shared_ptr<const Grammar>& grammar,
                             const std::string& prefix) {
  const auto& pieces = qwen_pieces();
  std::vector<int32_t> byte_token(256, -1);
  for (size_t id = 0; id < pieces->size(); ++id) {
    const std::string& p = (*pieces)[id];
    if (p.size() == 1 && byte_token[static_cast<unsigned char>(p[0])] < 0) {
      byte_token[static_cast<unsigned char>(p[0])] = static_cast<int32_t>(id);
    }
  }
  GrammarMatcher m(grammar, pieces);
  for (const char c : prefix) {
    if (!m.accept(byte_token[static_cast<unsigned char>(c)])) std::abort();
  }
  return m;
}

const char* kStates[] = {"{\"name\": \"Ali", "{\"name\": ", "{\"n\": 12", "{\"n\": 1, ", ""};

void BM_MaskJsonObject(benchmark::State& state) {
  GrammarMatcher m = matcher_after(Grammar::json_object(), kStates[state.range(0)]);
  std::vector<float> logits(qwen_pieces()->size(), 0.0f);
  for (auto _ : state) {
    m.mask(logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.SetLabel(std::string("after '") + kStates[state.range(0)] + "'");
}
BENCHMARK(BM_MaskJsonObject)->DenseRange(0, 4)->Unit(benchmark::kMillisecond);

void BM_MaskSchema(benchmark::State& state) {
  const auto g = Grammar::json_schema_text(R"({"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 40}, "age": {"type": "integer", "minimum": 0},
    "tags": {"type": "array", "items": {"type": "string"}}}, "required": ["name", "age"]})");
  GrammarMatcher m = matcher_after(g, "{\"name\": \"Al");
  std::vector<float> logits(qwen_pieces()->size(), 0.0f);
  for (auto _ : state) {
    m.mask(logits);
    benchmark::DoNotOptimize(logits.data());
  }
}
BENCHMARK(BM_MaskSchema)->Unit(benchmark::kMillisecond);

void BM_AcceptsOneToken(benchmark::State& state) {
  GrammarMatcher m = matcher_after(Grammar::json_object(), "{\"name\": \"Ali");
  const auto& pieces = qwen_pieces();
  int32_t id = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(m.accepts(id));
    id = (id + 7919) % static_cast<int32_t>(pieces->size());
  }
}
BENCHMARK(BM_AcceptsOneToken);

}  // namespace

BENCHMARK_MAIN();
