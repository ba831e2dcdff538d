#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/run_corral.h"
#include "testdata.h"

namespace corral::testing {
namespace {

TEST(CliDebugGguf, PrintsMetadataAndTensorTable) {
  const CommandResult r = run_corral(
      "debug gguf '" + testdata_path("tinystories260k/stories260K-f32.gguf") + "'", false);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Metadata (19 keys)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Tensors (48)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(R"(["<unk>", "<s>", "</s>", "<0x00>")"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(", ... 512 items]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1e-05"), std::string::npos) << r.out;
  // Text columns: name, dtype, shape, offset, bytes.
  EXPECT_NE(r.out.find("output_norm.weight        f32     [64]                    131072"),
            std::string::npos)
      << r.out;
}

TEST(CliDebugGguf, VerbosePrintsWholeArrays) {
  const CommandResult r = run_corral(
      "debug gguf --verbose '" + testdata_path("tinystories260k/stories260K-f32.gguf") + "'",
      false);
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.find("512 items"), std::string::npos);
  EXPECT_NE(r.out.find("\"<0x0A>\""), std::string::npos);
}

TEST(CliDebugGguf, JsonIsOneDocumentWithMetadataAndTensors) {
  const std::string path = testdata_path("tinystories260k/stories260K-f32.gguf");
  const CommandResult r = run_corral("debug gguf --json '" + path + "'", false);
  ASSERT_EQ(r.exit_code, 0);
  const auto doc = nlohmann::json::parse(r.out);
  EXPECT_EQ(doc["version"], 3);
  EXPECT_EQ(doc["data_offset"], 14176);
  EXPECT_EQ(doc["metadata"]["llama.block_count"]["type"], "u32");
  EXPECT_EQ(doc["metadata"]["llama.block_count"]["value"], 5);
  const auto& tokens = doc["metadata"]["tokenizer.ggml.tokens"];
  EXPECT_EQ(tokens["element_type"], "str");
  EXPECT_EQ(tokens["count"], 512);
  EXPECT_EQ(tokens["value"].size(), 8u);
  EXPECT_EQ(tokens["truncated"], true);
  ASSERT_EQ(doc["tensors"].size(), 48u);
  EXPECT_EQ(doc["tensors"][1]["name"], "output_norm.weight");
  EXPECT_EQ(doc["tensors"][1]["shape"], nlohmann::json::array({64}));
  EXPECT_EQ(doc["tensors"][1]["offset"], 131072);

  const auto full =
      nlohmann::json::parse(run_corral("debug gguf --json -v '" + path + "'", false).out);
  EXPECT_EQ(full["metadata"]["tokenizer.ggml.tokens"]["value"].size(), 512u);
  EXPECT_EQ(full["metadata"]["tokenizer.ggml.tokens"]["value"][1], "<s>");
}

TEST(CliDebugGguf, CorruptFileExitsNonZero) {
  const CommandResult r = run_corral("debug gguf /etc/hostname");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("Error: /etc/hostname: at byte offset 0"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace corral::testing
