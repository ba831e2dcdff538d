// `corral quantize IN OUT TYPE [-t N]` as a user runs it: progress and a summary on stderr, a
// loadable file, and one-line errors with exit code 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "cli/run_corral.h"
#include "convert/quantize_fixture.h"
#include "ml/gguf/reader.h"
#include "testdata.h"

namespace corral::convert {
namespace {

using corral::testing::run_corral;

TEST(QuantizeCli, WritesTheFileAndReportsProgress) {
  testing::TempDir dir;
  const std::string in = corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  const std::string out = dir.file("q4_k_m.gguf");
  const auto r = run_corral("quantize '" + in + "' '" + out + "' q4_k_m -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("quantizing F32 model to Q4_K_M 0%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("quantizing F32 model to Q4_K_M 100%"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("wrote " + out + " (Q4_K_M)"), std::string::npos) << r.out;
  const auto f = ml::gguf::File::open(out);
  EXPECT_EQ(f.metadata().get_u32("general.file_type"), 15u);
  // 64-wide rows fit no 256-block: Q4_K falls back to Q5_0, as llama.cpp's does.
  EXPECT_EQ(f.tensor("blk.0.attn_q.weight").dtype, ml::DType::Q5_0);
}

TEST(QuantizeCli, BadArgumentsGiveOneLineErrors) {
  testing::TempDir dir;
  const std::string in = corral::testing::testdata_path("tinystories260k/stories260K-f32.gguf");
  auto r = run_corral("quantize '" + in + "' '" + dir.file("o.gguf") + "' Q4_K_Z");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out.rfind("Error: unknown quantization type 'Q4_K_Z' (valid: F32, F16,", 0), 0u)
      << r.out;
  r = run_corral("quantize '" + in + "' '" + in + "' Q8_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("is the input file"), std::string::npos) << r.out;
  { std::ofstream(dir.file("notes.txt")) << "not a model"; }
  r = run_corral("quantize '" + dir.file("notes.txt") + "' '" + dir.file("o.gguf") + "' Q8_0");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("not a GGUF model file"), std::string::npos) << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.gguf")));
  r = run_corral("quantize '" + in + "'");
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace corral::convert
