#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli/run_corral.h"
#include "testdata.h"

namespace corral::testing {
namespace {

TEST(CliShow, SummarisesStories260K) {
  const CommandResult r =
      run_corral("show '" + testdata_path("tinystories260k/stories260K-f32.gguf") + "'", false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("architecture        llama\n"), std::string::npos) << r.out;
  // 48 tensors holding 292,800 weights (tied-size output kept as its own tensor).
  EXPECT_NE(r.out.find("parameters          292.8K\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("context length      512\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("embedding length    64\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("quantization        F32\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("block count         5\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("vocab size          512\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Metadata"), std::string::npos) << r.out;
}

TEST(CliShow, F16ModelReportsF16) {
  const CommandResult r =
      run_corral("show '" + testdata_path("tinystories260k/stories260K-f16.gguf") + "'", false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("quantization        F16\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("parameters          292.8K\n"), std::string::npos) << r.out;
}

TEST(CliShow, CorruptFileExitsNonZeroWithClearMessage) {
  std::ifstream in(testdata_path("tinystories260k/stories260K-f32.gguf"), std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  bytes.resize(5000);  // inside the token strings
  const std::string path =
      (std::filesystem::temp_directory_path() / "corral-show-corrupt.gguf").string();
  std::ofstream(path, std::ios::binary) << bytes;
  const CommandResult r = run_corral("show '" + path + "'");
  std::remove(path.c_str());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("Error: " + path + ": at byte offset ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("truncated"), std::string::npos) << r.out;
}

TEST(CliShow, MissingFileExitsNonZero) {
  const CommandResult r = run_corral("show /nonexistent/x.gguf");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "Error: /nonexistent/x.gguf: cannot open: No such file or directory\n");
}

TEST(CliShow, HelpDescribesCommand) {
  const CommandResult r = run_corral("show --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("quantization"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("GGUF model file"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace corral::testing
