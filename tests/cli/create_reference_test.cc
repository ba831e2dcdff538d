// The seed workflow on every Hugging Face reference checkpoint, through the commands users type:
// `corral create NAME -q F32` from a Modelfile naming the folder, then `corral debug logits NAME`
// and `corral debug tokenize NAME` against transformers' outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

using Json = nlohmann::json;

// Runs corral on the local store CORRAL_MODELS (never a server: CORRAL_NO_SERVER); returns stdout
// (stderr is dropped) and the exit status.
std::string corral(const TempDir& store, const std::string& args, int* status) {
  const std::string cmd = "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store.str() + "' '" +
                          CORRAL_BINARY + "' " + args + " 2>/dev/null </dev/null";
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int s = pclose(p);
  *status = WIFEXITED(s) ? WEXITSTATUS(s) : -1;
  return out;
}

class CreateReference : public ::testing::TestWithParam<std::string> {};

TEST_P(CreateReference, CreateF32ThenDebugLogitsAndTokenizeMatchTransformers) {
  const std::string folder = testdata_path("reference/" + GetParam());
  std::ifstream in(folder + "/reference.json");
  ASSERT_TRUE(in) << folder;
  const Json ref = Json::parse(in);
  TempDir store, work;
  write_text(work.path() / "Modelfile", "FROM " + folder + "\n");
  int status = -1;
  corral(store, "create ref -q F32 -f '" + (work.path() / "Modelfile").string() + "'", &status);
  ASSERT_EQ(status, 0);

  for (const Json& c : ref["cases"]) {
    std::string ids;
    for (const Json& id : c["input_ids"]) ids += (ids.empty() ? "" : ",") + id.dump();
    const std::string out = corral(store, "debug logits ref --json -t 1 --tokens " + ids, &status);
    ASSERT_EQ(status, 0) << out;
    const Json got = Json::parse(out);
    ASSERT_EQ(got["logits_shape"], c["logits_shape"]);
    const auto& want = c["logits"];
    const auto& rows = got["logits"];
    const size_t n_vocab = c["logits_shape"][1].get<size_t>();
    double max_err = 0;
    for (size_t t = 0; t < rows.size(); ++t)
      for (size_t v = 0; v < n_vocab; ++v)
        max_err = std::max(
            max_err, std::fabs(rows[t][v].get<double>() - want[t * n_vocab + v].get<double>()));
    EXPECT_LT(max_err, 1e-4) << "case with " << c["input_ids"].size() << " tokens";

    if (c.contains("text")) {
      const std::string text = c["text"].get<std::string>();
      TempDir t;
      write_text(t.path() / "text", text);
      const std::string tok = corral(
          store, "debug tokenize ref --json \"$(cat '" + (t.path() / "text").string() + "')\"",
          &status);
      ASSERT_EQ(status, 0);
      // $(...) drops trailing newlines: compare only texts the shell passes through unchanged.
      if (!text.ends_with("\n")) EXPECT_EQ(Json::parse(tok)["ids"], c["input_ids"]) << text;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, CreateReference,
                         ::testing::Values("stories260K", "tiny-llama3", "tiny-qwen2", "tiny-qwen3",
                                           "small-llama-256"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

}  // namespace
}  // namespace corral::testing
