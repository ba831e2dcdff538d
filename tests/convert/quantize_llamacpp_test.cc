// llama.cpp reads what corral quantize writes: files quantized by corral (small-llama-256 from
// F32 to F32, Q8_0, Q4_0 and Q4_K_M; the trained stories260K to Q8_0), loaded by llama.cpp
// (node-llama-cpp 3.21.1's prebuilt CPU binary, run by tests/llamacpp/generate.mjs) and
// continued greedily. At Q8_0 llama.cpp's tokens must be corral's own greedy tokens (the
// engine's argmax on the same file); at F32 transformers' greedy tokens; at the 4-bit types it
// is enough that llama.cpp loads the file and generates.
//
// Needs node and `npm ci` in tests/llamacpp (scripts/test.sh runs it); without them the test
// fails and says so.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "convert/quantize.h"
#include "convert/quantize_fixture.h"
#include "runner/engine.h"

namespace corral::convert {
namespace {

using testing::small_llama;

const std::string kDir = std::string(CORRAL_SOURCE_DIR) + "/tests/llamacpp";

// Empty when node and node-llama-cpp are usable, else why not.
std::string llamacpp_missing() {
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    return "node is not installed (needed to run llama.cpp through node-llama-cpp)";
  }
  if (!std::filesystem::exists(kDir + "/node_modules/node-llama-cpp/package.json") ||
      !std::filesystem::exists(kDir + "/node_modules/@node-llama-cpp/linux-x64/package.json")) {
    return "node-llama-cpp is not installed in " + kDir +
           "/node_modules: run scripts/test.sh, or `npm ci --omit=optional --ignore-scripts` "
           "there";
  }
  return {};
}

struct Job {
  std::string model;
  std::vector<int32_t> prompt;
  int n;
};

struct NodeRun {
  int status = -1;
  std::vector<std::vector<int32_t>> ids;  // per job
  std::string output;                     // stdout and stderr, for failure messages
};

// One node process for every job: llama.cpp's start-up is most of the time.
NodeRun llamacpp_generate(const std::vector<Job>& jobs, const std::string& err_file) {
  std::string cmd = "node '" + kDir + "/generate.mjs'";
  for (const Job& j : jobs) {
    std::string ids;
    for (int32_t t : j.prompt) {
      if (!ids.empty()) ids += ' ';
      ids += std::to_string(t);
    }
    cmd += " '" + j.model + "' '" + ids + "' " + std::to_string(j.n);
  }
  cmd += " 2> '" + err_file + "'";
  NodeRun r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  std::string out;
  while (size_t k = fread(buf, 1, sizeof buf, p)) out.append(buf, k);
  r.status = pclose(p);
  std::ifstream e(err_file);
  std::stringstream ss;
  ss << e.rdbuf();
  r.output = out + ss.str();
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream in(line);
    auto& ids = r.ids.emplace_back();
    for (int32_t t; in >> t;) ids.push_back(t);
  }
  return r;
}

// corral's greedy continuation from full-sequence logits, with each step's top-2 margin.
std::vector<int32_t> corral_greedy(const std::string& model, std::vector<int32_t> seq, int n,
                                   std::vector<float>& margins) {
  runner::Engine e(model, {.n_threads = 1, .cache_dtype = ml::DType::F32});
  const size_t n_vocab = static_cast<size_t>(e.model().config().n_vocab);
  const int32_t eos =
      static_cast<int32_t>(e.file().metadata().get_integer("tokenizer.ggml.eos_token_id"));
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const std::vector<float> logits = e.logits(seq);
    const float* last = &logits[logits.size() - n_vocab];
    const auto best = static_cast<int32_t>(testing::argmax(last, n_vocab));
    margins.push_back(testing::top2_margin(last, n_vocab));
    out.push_back(best);
    if (best == eos) break;
    seq.push_back(best);
  }
  return out;
}

size_t decidable_steps(const std::vector<float>& margins, float noise) {
  size_t n = 0;
  while (n < margins.size() && margins[n] >= noise) ++n;
  return n;
}

std::vector<int32_t> head(const std::vector<int32_t>& v, size_t n) {
  return {v.begin(), v.begin() + static_cast<std::ptrdiff_t>(std::min(n, v.size()))};
}

// Every file llama.cpp is asked about, written once by corral quantize, and llama.cpp's answers.
struct Fixture {
  std::string missing;
  std::string stories_q8, small_f32, small_q8;
  std::vector<int32_t> stories_prompt{1, 403, 407, 261, 378};
  std::vector<int32_t> small_prompt;
  NodeRun run;
};

constexpr int kStoriesSteps = 24;
constexpr int kSmallSteps = 8;

const Fixture& fixture() {
  static const std::unique_ptr<Fixture> f = [] {
    auto f = std::make_unique<Fixture>();
    f->missing = llamacpp_missing();
    if (!f->missing.empty()) return f;
    const auto& s = small_llama();
    const WriteOptions two{.n_threads = 2, .progress = {}};
    f->stories_q8 = s.dir.file("llamacpp-stories260K-q8_0.gguf");
    quantize_file(corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf"),
                  f->stories_q8, parse_quant_type("Q8_0"), two);
    f->small_f32 = s.dir.file("llamacpp-small-f32.gguf");
    quantize_file(s.f32_path, f->small_f32, parse_quant_type("F32"), two);
    f->small_q8 = s.dir.file("llamacpp-small-q8_0.gguf");
    quantize_file(s.f32_path, f->small_q8, parse_quant_type("Q8_0"), two);
    f->small_prompt = s.reference.at("cases")[0].at("input_ids").get<std::vector<int32_t>>();
    std::vector<Job> jobs = {
        {f->stories_q8, f->stories_prompt, kStoriesSteps},
        {f->small_f32, f->small_prompt, kSmallSteps},
        {f->small_q8, f->small_prompt, kSmallSteps},
    };
    for (const char* type : {"Q4_0", "Q4_K_M"}) {
      const std::string path = s.dir.file(std::string("llamacpp-small-") + type + ".gguf");
      quantize_file(s.f32_path, path, parse_quant_type(type), two);
      jobs.push_back({path, f->small_prompt, kSmallSteps});
    }
    f->run = llamacpp_generate(jobs, s.dir.file("llamacpp.stderr"));
    return f;
  }();
  return *f;
}

void check_q8_0_greedy_matches_corral(const Fixture& f) {
  // stories260K (trained: clear margins), Q8_0 but for ffn_down, whose 172-wide rows fit no
  // 32-block and fall back to F16. Both engines quantize activations for Q8_0 products and
  // differ by up to ~0.1 in a logit, so steps are compared up to the first closer call.
  std::vector<float> margins;
  const auto want = corral_greedy(f.stories_q8, f.stories_prompt, kStoriesSteps, margins);
  size_t n = decidable_steps(margins, 0.1f);
  EXPECT_GE(n, 16u) << "a trained model should have clear greedy steps";
  EXPECT_EQ(head(f.run.ids[0], n), head(want, n)) << f.run.output;
  std::printf("stories260K Q8_0: llama.cpp and corral agree on %zu of %zu greedy steps\n", n,
              want.size());

  // small-llama-256 (random weights: flat logits), Q8_0 throughout.
  margins.clear();
  const auto small = corral_greedy(f.small_q8, f.small_prompt, kSmallSteps, margins);
  n = decidable_steps(margins, 0.1f);
  EXPECT_GE(n, 1u);
  EXPECT_EQ(head(f.run.ids[2], n), head(small, n)) << f.run.output;
  std::printf("small-llama-256 Q8_0: llama.cpp and corral agree on %zu decidable greedy steps\n",
              n);
}

void check_f32_greedy_matches_transformers(const Fixture& f) {
  const auto& c = small_llama().reference.at("cases")[0];
  const std::vector<int32_t> want = c.at("greedy_ids");
  const std::vector<float> margins = c.at("greedy_top2_margin");
  // llama.cpp's f16 KV cache moves logits by ~1e-3.
  const size_t n = std::min<size_t>(decidable_steps(margins, 1e-2f), kSmallSteps);
  EXPECT_GE(n, 4u);
  EXPECT_EQ(head(f.run.ids[1], n), head(want, n)) << f.run.output;
}

void check_4bit_files_generate(const Fixture& f) {
  for (size_t i : {3, 4}) {
    EXPECT_FALSE(f.run.ids[i].empty()) << f.run.output;
    EXPECT_LE(f.run.ids[i].size(), static_cast<size_t>(kSmallSteps));
    for (int32_t t : f.run.ids[i]) EXPECT_TRUE(t >= 0 && t < 400) << t;
  }
}

// One test, so that llama.cpp starts once however the suite is run (ctest runs each test in a
// process of its own).
TEST(LlamaCpp, LoadsCorralQuantizedFilesAndGeneratesAsCorralAndTransformersDo) {
  const Fixture& f = fixture();
  ASSERT_TRUE(f.missing.empty()) << f.missing;
  ASSERT_EQ(f.run.status, 0) << f.run.output;
  ASSERT_EQ(f.run.ids.size(), 5u) << f.run.output;
  {
    SCOPED_TRACE("Q8_0: llama.cpp's greedy tokens are corral's");
    check_q8_0_greedy_matches_corral(f);
  }
  {
    SCOPED_TRACE("F32 written by corral quantize: llama.cpp's greedy tokens are transformers'");
    check_f32_greedy_matches_transformers(f);
  }
  {
    SCOPED_TRACE("Q4_0 and Q4_K_M: llama.cpp loads and generates");
    check_4bit_files_generate(f);
  }
}

}  // namespace
}  // namespace corral::convert
