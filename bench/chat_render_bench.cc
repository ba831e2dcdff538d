// Rendering a long chat into a prompt that fits the context (server/generation.cc render_chat)
// with a real model's template and tokenizer (Qwen3's), against the scan from the front it
// replaced, and the two parts of the cost (one rendering, one tokenization) on their own.
// Fixtures: $CORRAL_TESTDATA, else ../shared/testdata.
//
//   build/chat_render_bench --benchmark_filter=RenderChat
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "server/generation.h"
#include "template/prompt.h"
#include "tokenizer/tokenizer.h"

namespace {

using corral::tmpl::Json;

constexpr int64_t kNumCtx = 4096;

std::string testdata(const std::string& relative) {
  const char* env = std::getenv("CORRAL_TESTDATA");
  return std::string(env != nullptr ? env : "../shared/testdata") + "/" + relative;
}

struct Fixture {
  corral::tokenizer::Tokenizer tokenizer =
      corral::tokenizer::Tokenizer::from_hf(testdata("tokenizers/qwen3"));
  corral::tmpl::PromptTemplate chat_template = [] {
    std::ifstream in(testdata("tokenizers/qwen3/tokenizer_config.json"));
    const Json config = Json::parse(in);
    return corral::tmpl::PromptTemplate{corral::tmpl::Syntax::kJinja,
                                        config.at("chat_template").get<std::string>(), "qwen3"};
  }();
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

corral::tmpl::ChatInput chat(int64_t n) {
  corral::tmpl::ChatInput in;
  in.messages.push_back({{"role", "system"}, {"content", "You are a helpful assistant."}});
  for (int64_t i = 0; i < n; ++i) {
    in.messages.push_back({{"role", i % 2 ? "assistant" : "user"},
                           {"content", "Message " + std::to_string(i) +
                                           ": what is the weather like in Paris today?"}});
  }
  return in;
}

// What render_chat did before: every start from the front until the prompt fits.
std::string render_chat_by_scan(const Fixture& f, corral::tmpl::ChatInput input) {
  const Json all = input.messages;
  for (size_t start = 0; start < all.size(); ++start) {
    Json msgs = Json::array();
    for (size_t j = 0; j < start; ++j)
      if (all[j].value("role", "") == "system") msgs.push_back(all[j]);
    for (size_t j = start; j < all.size(); ++j) msgs.push_back(all[j]);
    input.messages = std::move(msgs);
    std::string prompt = corral::tmpl::render_prompt(f.chat_template, input);
    if (start + 1 == all.size() ||
        static_cast<int64_t>(corral::server::tokenize_prompt(f.tokenizer, prompt).size()) <=
            kNumCtx)
      return prompt;
  }
  return "";
}

void BM_RenderChat(benchmark::State& state) {
  const Fixture& f = fixture();
  const auto in = chat(state.range(0));
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        corral::server::render_chat(f.chat_template, in, f.tokenizer, kNumCtx, true));
  }
}
BENCHMARK(BM_RenderChat)
    ->Arg(1000)
    ->Arg(2000)
    ->Arg(4000)
    ->Arg(8000)
    ->Arg(100000)
    ->Unit(benchmark::kMillisecond);

void BM_RenderChatByScan(benchmark::State& state) {
  const Fixture& f = fixture();
  const auto in = chat(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(render_chat_by_scan(f, in));
}
BENCHMARK(BM_RenderChatByScan)
    ->Arg(1000)
    ->Arg(2000)
    ->Arg(4000)
    ->Arg(8000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

// One rendering of the whole chat, and one tokenization of its prompt.
void BM_RenderOnce(benchmark::State& state) {
  const Fixture& f = fixture();
  const auto in = chat(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(corral::tmpl::render_prompt(f.chat_template, in));
}
BENCHMARK(BM_RenderOnce)->Arg(1000)->Arg(8000)->Arg(100000)->Unit(benchmark::kMillisecond);

void BM_TokenizeOnce(benchmark::State& state) {
  const Fixture& f = fixture();
  const std::string prompt = corral::tmpl::render_prompt(f.chat_template, chat(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(corral::server::tokenize_prompt(f.tokenizer, prompt));
  }
}
BENCHMARK(BM_TokenizeOnce)->Arg(1000)->Arg(8000)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
