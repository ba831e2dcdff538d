// `corral bench` through the binary: its --json report (one object per test, with every sample)
// and the error for a model that does not exist. No timing assertions: the machine is shared.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cuda/cuda.h"
#include "cli/run_corral.h"
#include "testdata.h"

namespace corral::testing {
namespace {

using Json = nlohmann::json;

std::vector<Json> json_lines(const std::string& out) {
  std::vector<Json> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(Json::parse(line));
  }
  return lines;
}

TEST(BenchCli, JsonReportsBothTestsWithPositiveThroughput) {
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r =
      run_corral("bench '" + model + "' -p 16 -n 8 -r 2 -t 1 --json", /*merge_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<Json> tests;
  ASSERT_NO_THROW(tests = json_lines(r.out)) << r.out;
  ASSERT_EQ(tests.size(), 2u) << r.out;
  EXPECT_EQ(tests[0]["test"], "pp16");
  EXPECT_EQ(tests[0]["n_prompt"], 16);
  EXPECT_EQ(tests[0]["n_gen"], 0);
  EXPECT_EQ(tests[1]["test"], "tg8");
  EXPECT_EQ(tests[1]["n_prompt"], 0);
  EXPECT_EQ(tests[1]["n_gen"], 8);
  for (const Json& t : tests) {
    EXPECT_EQ(t["model_path"], model);
    EXPECT_EQ(t["model_arch"], "llama");
    EXPECT_EQ(t["model_type"], "F32");
    EXPECT_EQ(t["backend"], "CPU");
    EXPECT_EQ(t["n_threads"], 1);
    // stories260K: 292,480 parameters as llama.cpp counts them, 4 bytes each.
    EXPECT_GT(t["model_n_params"].get<uint64_t>(), 250'000u);
    EXPECT_EQ(t["model_size"].get<uint64_t>(), 4 * t["model_n_params"].get<uint64_t>());
    // 2 ops per parameter of the matrices a token passes (not the embedding): fewer than all.
    EXPECT_GT(t["flops_per_token"].get<uint64_t>(), 0u);
    EXPECT_LT(t["flops_per_token"].get<uint64_t>(), 2 * t["model_n_params"].get<uint64_t>());
    ASSERT_EQ(t["samples_ns"].size(), 2u);
    ASSERT_EQ(t["samples_ts"].size(), 2u);
    for (const Json& ns : t["samples_ns"]) EXPECT_GT(ns.get<int64_t>(), 0);
    for (const Json& ts : t["samples_ts"]) EXPECT_GT(ts.get<double>(), 0);
    EXPECT_GT(t["avg_ts"].get<double>(), 0);
    EXPECT_GE(t["stddev_ts"].get<double>(), 0);
  }
}

TEST(BenchCli, GpuWithoutADeviceFailsSayingWhy) {
  if (!backend::cuda::devices().empty()) GTEST_SKIP() << "a CUDA device is present";
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r = run_corral("bench '" + model + "' -p 8 -n 0 -r 1 -t 1 --gpu", true);
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find(backend::cuda::unavailable_reason()), std::string::npos) << r.out;
}

TEST(BenchCli, GpuRunsOffloadEveryLayerAndSaySo) {
  if (backend::cuda::devices().empty()) {
    GTEST_SKIP() << "no CUDA device: " << backend::cuda::unavailable_reason();
  }
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r =
      run_corral("bench '" + model + "' -p 16 -n 8 -r 1 -t 1 --gpu --json", false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<Json> tests;
  ASSERT_NO_THROW(tests = json_lines(r.out)) << r.out;
  ASSERT_EQ(tests.size(), 2u) << r.out;
  for (const Json& t : tests) {
    EXPECT_EQ(t["backend"], "CUDA");
    EXPECT_EQ(t["n_gpu_layers"], 6);  // 5 blocks and the output layer
    EXPECT_GT(t["avg_ts"].get<double>(), 0);
  }
}

// --profile: per generated token, each op's calls and time; stories260K has 5 layers, so 10
// products with 64x64 weights (q and attention's output), one output projection (64x512) and
// 11 rms_norm (two per layer and the final one) per token.
TEST(BenchCli, ProfileCountsEachOpPerGeneratedToken) {
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r =
      run_corral("bench '" + model + "' -p 0 -n 8 -r 2 -t 1 --profile", /*merge_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("profile of tg8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| op | calls | us | share | GB/s |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| mul_mat f32 64x64 | 10.0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| mul_mat f32 64x512 | 1.0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| rms_norm | 11.0 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| (outside the kernels) |"), std::string::npos) << r.out;
}

TEST(BenchCli, ProfileCountsEachOpPerPromptTokenOfThePromptTest) {
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r =
      run_corral("bench '" + model + "' -p 16 -n 0 -r 1 -t 1 --profile", /*merge_stderr=*/false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("profile of pp16 (CPU kernels, per prompt token)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| rms_norm |"), std::string::npos) << r.out;
}

// CORRAL_CPU_ISA picks a narrower kernel set (the scalar one runs on every CPU); a name that is
// no set fails before any work, naming it.
TEST(BenchCli, CpuIsaFromTheEnvironment) {
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const std::string args = "bench '" + model + "' -p 8 -n 4 -r 1 -t 1";
  const CommandResult scalar =
      run_shell("CORRAL_CPU_ISA=scalar '" + std::string(CORRAL_BINARY) + "' " + args + " 2>&1");
  EXPECT_EQ(scalar.exit_code, 0) << scalar.out;
  EXPECT_NE(scalar.out.find("tg4"), std::string::npos) << scalar.out;
  const CommandResult bad =
      run_shell("CORRAL_CPU_ISA=sse9 '" + std::string(CORRAL_BINARY) + "' " + args + " 2>&1");
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  EXPECT_NE(bad.out.find("CORRAL_CPU_ISA=sse9: not an instruction set"), std::string::npos)
      << bad.out;
}

TEST(BenchCli, TableHasOneRowPerTestAndZeroSkipsATest) {
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r = run_corral("bench '" + model + "' -p 8 -n 0 -r 1 -t 1", false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("| model | size | params | backend | threads | test | t/s |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| llama F32 | "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| CPU | 1 | pp8 | "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("| tg"), std::string::npos) << r.out;
}

// --parallel: one report per count, each sequence generated its tokens (stories260K can end one
// early at EOS, never with none), and a prompt gives the same greedy tokens beside others as with
// fewer companions.
TEST(BenchCli, ParallelReportsEveryCountAndEverySequenceGenerates) {
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r =
      run_corral("bench '" + model + "' -n 12 -r 2 -t 1 --parallel 1,3 --json", false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  std::vector<Json> tests;
  ASSERT_NO_THROW(tests = json_lines(r.out)) << r.out;
  ASSERT_EQ(tests.size(), 2u) << r.out;
  const int counts[] = {1, 3};
  for (size_t i = 0; i < tests.size(); ++i) {
    const Json& t = tests[i];
    SCOPED_TRACE(t.dump());
    EXPECT_EQ(t["test"], "parallel" + std::to_string(counts[i]));
    EXPECT_EQ(t["n_parallel"], counts[i]);
    EXPECT_EQ(t["n_gen"], 12);
    EXPECT_EQ(t["n_threads"], 1);
    EXPECT_GT(t["flops_per_token"].get<uint64_t>(), 0u);
    ASSERT_EQ(t["tokens_per_sequence"].size(), static_cast<size_t>(counts[i]));
    int sum = 0;
    for (const Json& n : t["tokens_per_sequence"]) {
      EXPECT_GE(n.get<int>(), 1);
      EXPECT_LE(n.get<int>(), 12);
      sum += n.get<int>();
    }
    ASSERT_EQ(t["generated"].size(), 2u);
    EXPECT_EQ(t["generated"][1].get<int>(), sum);
    ASSERT_EQ(t["samples_ns"].size(), 2u);
    for (const Json& ts : t["samples_ts"]) EXPECT_GT(ts.get<double>(), 0);
    EXPECT_GT(t["avg_ts"].get<double>(), 0);
    EXPECT_TRUE(t["same_as_fewer"].get<bool>());
  }
  EXPECT_EQ(tests[0]["compared"], 0);
  EXPECT_EQ(tests[1]["compared"], 2);  // sequence 0 of each repetition against N=1's
}

TEST(BenchCli, ParallelRejectsABadCountNamingIt) {
  const std::string model = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r = run_corral("bench '" + model + "' -n 4 -r 1 --parallel 1,0x");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("'0x'"), std::string::npos) << r.out;
}

TEST(BenchCli, MissingModelFailsNamingIt) {
  const CommandResult r = run_corral("bench /nonexistent/model.gguf -p 4 -n 2 -r 1");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("/nonexistent/model.gguf"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace corral::testing
