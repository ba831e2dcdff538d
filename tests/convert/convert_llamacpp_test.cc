// llama.cpp loads what corral's converter writes, unchanged: each reference checkpoint converted
// to F32 is run by llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU binary, through
// tests/llamacpp/generate.mjs) and continued greedily from every reference prompt; its tokens
// must be transformers' greedy tokens up to the first step too close to call.
//
// Needs node and `npm ci` in tests/llamacpp (scripts/setup_llamacpp.sh); without them the test
// fails and says so.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "convert/convert.h"
#include "testdata.h"

namespace corral::convert {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kNodeDir = std::string(CORRAL_SOURCE_DIR) + "/tests/llamacpp";

std::string llamacpp_missing() {
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    return "node is not installed (needed to run llama.cpp through node-llama-cpp)";
  }
  if (!fs::exists(kNodeDir + "/node_modules/node-llama-cpp/package.json") ||
      !fs::exists(kNodeDir + "/node_modules/@node-llama-cpp/linux-x64/package.json")) {
    return "node-llama-cpp is not installed in " + kNodeDir +
           "/node_modules: run scripts/setup_llamacpp.sh";
  }
  return {};
}

TEST(LlamaCppConvert, LlamaCppContinuesConvertedCheckpointsAsTransformers) {
  const std::string missing = llamacpp_missing();
  ASSERT_TRUE(missing.empty()) << missing;
  const fs::path tmp =
      fs::temp_directory_path() / ("corral-convert-llamacpp-" + std::to_string(::getpid()));
  fs::create_directories(tmp);

  struct Job {
    std::string model;
    std::vector<int32_t> prompt, want;
  };
  std::vector<Job> jobs;
  std::string cmd = "node '" + kNodeDir + "/generate.mjs'";
  for (const char* name :
       {"stories260K", "tiny-llama3", "tiny-qwen2", "tiny-qwen3", "small-llama-256"}) {
    const std::string dir = corral::testing::testdata_path(std::string("reference/") + name);
    const std::string out = (tmp / (std::string(name) + ".gguf")).string();
    ConvertOptions options;
    options.type = "F32";
    options.write.n_threads = 1;
    convert_hf(dir, out, options);
    std::ifstream in(dir + "/reference.json");
    const json reference = json::parse(in);
    // The first prompt of each model: llama.cpp's start-up per file is most of the time.
    for (const json& c : {reference.at("cases").at(0)}) {
      const std::vector<int32_t> greedy = c.at("greedy_ids");
      const std::vector<float> margins = c.at("greedy_top2_margin");
      // llama.cpp's f16 KV cache moves logits by ~1e-3: compare only steps decided by more.
      size_t n = 0;
      while (n < margins.size() && n < 8 && margins[n] >= 1e-2f) ++n;
      if (n == 0) continue;
      Job j;
      j.model = out;
      j.prompt = c.at("input_ids").get<std::vector<int32_t>>();
      j.want.assign(greedy.begin(), greedy.begin() + static_cast<std::ptrdiff_t>(n));
      std::string ids;
      for (const int32_t t : j.prompt) ids += (ids.empty() ? "" : " ") + std::to_string(t);
      cmd += " '" + out + "' '" + ids + "' " + std::to_string(n);
      jobs.push_back(std::move(j));
    }
  }
  ASSERT_EQ(jobs.size(), 5u);
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (const size_t k = fread(buf, 1, sizeof buf, p)) output.append(buf, k);
  const int status = pclose(p);
  fs::remove_all(tmp);
  ASSERT_EQ(status, 0) << output;

  std::istringstream lines(output);
  size_t i = 0;
  for (std::string line; std::getline(lines, line) && i < jobs.size(); ++i) {
    std::istringstream in(line);
    std::vector<int32_t> got;
    for (int32_t t; in >> t;) got.push_back(t);
    EXPECT_EQ(got, jobs[i].want) << fs::path(jobs[i].model).filename() << " job " << i << "\n"
                                 << output;
  }
  EXPECT_EQ(i, jobs.size()) << output;
}

// The converted tiny-bert embeds in llama.cpp (tests/llamacpp/embed.mjs) as in transformers:
// llama.cpp reads the bert keys and tensor names, tokenizes each text with the phantom-space
// WordPiece vocabulary, and mean-pools as bert.pooling_type says. llama.cpp's own arithmetic
// differs by up to ~1e-4, so the normalized vectors are compared at 1e-3.
TEST(LlamaCppConvert, LlamaCppEmbedsConvertedBertAsTransformers) {
  const std::string missing = llamacpp_missing();
  ASSERT_TRUE(missing.empty()) << missing;
  const fs::path tmp =
      fs::temp_directory_path() / ("corral-convert-llamacpp-bert-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  const std::string dir = corral::testing::testdata_path("reference/tiny-bert");
  const std::string out = (tmp / "tiny-bert.gguf").string();
  ConvertOptions options;
  options.type = "F32";
  options.write.n_threads = 1;
  convert_hf(dir, out, options);
  std::ifstream in(dir + "/reference.json");
  const json cases = json::parse(in).at("cases");
  std::string cmd = "node '" + kNodeDir + "/embed.mjs' '" + out + "'";
  for (const json& c : cases) cmd += " '" + c.at("text").get<std::string>() + "'";
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string output;
  char buf[4096];
  while (const size_t k = fread(buf, 1, sizeof buf, p)) output.append(buf, k);
  const int status = pclose(p);
  fs::remove_all(tmp);
  ASSERT_EQ(status, 0) << output;
  std::istringstream lines(output);
  size_t i = 0;
  for (std::string line; std::getline(lines, line) && i < cases.size(); ++i) {
    std::vector<float> got = json::parse(line);
    const std::vector<float> want = cases[i].at("mean_pooled_normalized");
    ASSERT_EQ(got.size(), want.size()) << output;
    double norm = 0;
    for (const float x : got) norm += static_cast<double>(x) * x;
    for (size_t j = 0; j < want.size(); ++j) {
      EXPECT_NEAR(got[j] / std::sqrt(norm), want[j], 1e-3) << "case " << i << " [" << j << "]";
    }
  }
  EXPECT_EQ(i, cases.size()) << output;
}

}  // namespace
}  // namespace corral::convert
