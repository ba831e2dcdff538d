// `corral debug tensors` on tiny-llama3 (created with -q F32, as users would) against the hidden
// states transformers returned (reference.json): the embedding output, every block's output and
// the final norm; --filter and a bad --tokens.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/temp_store.h"
#include "testdata.h"

namespace corral::testing {
namespace {

using Json = nlohmann::json;

// Runs corral on the local store (never a server); stdout, then stderr when merge_stderr.
std::string corral(const TempDir& store, const std::string& args, int* status,
                   bool merge_stderr = false) {
  const std::string cmd = "CORRAL_NO_SERVER=1 CORRAL_MODELS='" + store.str() + "' '" +
                          CORRAL_BINARY + "' " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null") +
                          " </dev/null";
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

class DebugTensors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    store_ = new TempDir;
    work_ = new TempDir;
    folder_ = new std::string(testdata_path("reference/tiny-llama3"));
    write_text(work_->path() / "Modelfile", "FROM " + *folder_ + "\n");
    int status = -1;
    corral(*store_, "create tiny -q F32 -f '" + (work_->path() / "Modelfile").string() + "'",
           &status);
    created_ = status == 0;
  }
  static void TearDownTestSuite() {
    delete store_;
    delete work_;
    delete folder_;
  }
  void SetUp() override { ASSERT_TRUE(created_) << "corral create tiny -q F32 failed"; }

  static Json first_case() {
    std::ifstream in(*folder_ + "/reference.json");
    return Json::parse(in)["cases"][0];
  }
  static std::string ids_of(const Json& c) {
    std::string ids;
    for (const Json& id : c["input_ids"]) ids += (ids.empty() ? "" : ",") + id.dump();
    return ids;
  }

  static TempDir* store_;
  static TempDir* work_;
  static std::string* folder_;
  static bool created_;
};
TempDir* DebugTensors::store_ = nullptr;
TempDir* DebugTensors::work_ = nullptr;
std::string* DebugTensors::folder_ = nullptr;
bool DebugTensors::created_ = false;

// The largest difference between a tensor's values and hidden_states[layer].
double max_error(const Json& tensor, const Json& c, size_t layer) {
  const size_t n_tokens = c["hidden_states_shape"][1], n_embd = c["hidden_states_shape"][2];
  const auto& want = c["hidden_states"];
  const auto& got = tensor["values"];
  EXPECT_EQ(tensor["shape"], Json::array({n_tokens, n_embd})) << tensor["name"];
  if (got.size() != n_tokens * n_embd) return INFINITY;
  double err = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    err = std::max(
        err, std::fabs(got[i].get<double>() - want[layer * n_tokens * n_embd + i].get<double>()));
  }
  return err;
}

TEST_F(DebugTensors, JsonReproducesTransformersHiddenStatesForEveryLayer) {
  const Json c = first_case();
  ASSERT_TRUE(c.contains("hidden_states"));
  int status = -1;
  const std::string out =
      corral(*store_, "debug tensors tiny --json -t 1 --tokens " + ids_of(c), &status);
  ASSERT_EQ(status, 0) << out;
  const Json got = Json::parse(out);
  std::map<std::string, Json> by_name;
  for (const Json& t : got["tensors"]) by_name[t["name"]] = t;
  const size_t n_states = c["hidden_states_shape"][0];  // embeddings, then one per block
  const size_t n_layer = n_states - 1;
  ASSERT_TRUE(by_name.count("token_embd.out"));
  EXPECT_LT(max_error(by_name["token_embd.out"], c, 0), 1e-4) << "token_embd.out";
  // transformers' last entry is after the final norm; the others are each block's residual.
  for (size_t il = 0; il + 1 < n_layer; ++il) {
    const std::string name = "blk." + std::to_string(il) + ".out";
    ASSERT_TRUE(by_name.count(name)) << name;
    EXPECT_LT(max_error(by_name[name], c, il + 1), 1e-4) << name;
  }
  ASSERT_TRUE(by_name.count("blk." + std::to_string(n_layer - 1) + ".out"));
  ASSERT_TRUE(by_name.count("output_norm.out"));
  EXPECT_LT(max_error(by_name["output_norm.out"], c, n_layer), 1e-4) << "output_norm.out";
  // The logits come last and equal `debug logits`'s reference.
  const Json& logits = got["tensors"].back();
  EXPECT_EQ(logits["name"], "logits");
  EXPECT_EQ(logits["shape"], c["logits_shape"]);
  double err = 0;
  for (size_t i = 0; i < c["logits"].size(); ++i) {
    err =
        std::max(err, std::fabs(logits["values"][i].get<double>() - c["logits"][i].get<double>()));
  }
  EXPECT_LT(err, 1e-4);
}

TEST_F(DebugTensors, FilterSelectsBySubstringAndGlob) {
  const Json c = first_case();
  int status = -1;
  Json got = Json::parse(
      corral(*store_, "debug tensors tiny --json --filter blk. --tokens " + ids_of(c), &status));
  ASSERT_EQ(status, 0);
  std::vector<std::string> names;
  for (const Json& t : got["tensors"]) names.push_back(t["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"blk.0.out", "blk.1.out"}));

  got = Json::parse(
      corral(*store_, "debug tensors tiny --json --filter '*1.out' --tokens 1,2,3", &status));
  ASSERT_EQ(status, 0);
  ASSERT_EQ(got["tensors"].size(), 1u);
  EXPECT_EQ(got["tensors"][0]["name"], "blk.1.out");
  EXPECT_EQ(got["tensors"][0]["shape"], Json::array({3, 64}));

  const std::string none =
      corral(*store_, "debug tensors tiny --filter nothing --tokens 1,2", &status, true);
  EXPECT_NE(status, 0);
  EXPECT_NE(none.find("matches no tensor"), std::string::npos) << none;
  EXPECT_NE(none.find("blk.0.out"), std::string::npos) << none;
}

TEST_F(DebugTensors, TextShowsNamesShapesAndStatistics) {
  int status = -1;
  const std::string out = corral(*store_, "debug tensors tiny --tokens 1,2,3", &status);
  ASSERT_EQ(status, 0) << out;
  for (const char* want : {"token_embd.out [3, 64]", "blk.0.out [3, 64]", "blk.1.out [3, 64]",
                           "output_norm.out [3, 64]", "logits [3, 400]", "mean ", "std ", "max "}) {
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;
  }
}

TEST_F(DebugTensors, BadTokensGiveAClearError) {
  for (const auto& [tokens, message] : std::vector<std::pair<std::string, std::string>>{
           {"1,x,3", "'x' is not a token id"},
           {"1,,3", "empty entry"},
           {"1.5", "'1.5' is not a token id"},
           {"1,400", "token 400 is outside the vocabulary (400 tokens"},
           {"-1", "token -1 is outside the vocabulary"},
           {"''", "no tokens"},
       }) {
    int status = -1;
    const std::string out = corral(*store_, "debug tensors tiny --tokens " + tokens, &status, true);
    EXPECT_NE(status, 0) << tokens;
    EXPECT_NE(out.find(message), std::string::npos) << tokens << ": " << out;
  }
}

TEST_F(DebugTensors, CompareFindsTheFirstLayerThatDiverges) {
  int status = -1;
  const std::string reference = *folder_ + "/reference.json";
  std::string out =
      corral(*store_, "debug tensors tiny -t 1 --compare '" + reference + "'", &status);
  ASSERT_EQ(status, 0) << out;
  for (const char* want : {"token_embd.out", "blk.0.out", "output_norm.out", "every layer within"})
    EXPECT_NE(out.find(want), std::string::npos) << want << "\n" << out;

  // The same states, nested as output_hidden_states gives them, with one value of the second
  // block's output moved: the comparison points at that block.
  const Json c = first_case();
  const size_t n_states = c["hidden_states_shape"][0], n_tokens = c["hidden_states_shape"][1],
               n_embd = c["hidden_states_shape"][2];
  Json nested = Json::array();
  for (size_t l = 0; l < n_states; ++l) {
    Json layer = Json::array();
    for (size_t t = 0; t < n_tokens; ++t) {
      Json row = Json::array();
      for (size_t i = 0; i < n_embd; ++i)
        row.push_back(c["hidden_states"][(l * n_tokens + t) * n_embd + i]);
      layer.push_back(std::move(row));
    }
    nested.push_back(std::move(layer));
  }
  nested[1][2][5] = nested[1][2][5].get<double>() + 0.5;
  const auto moved = work_->path() / "moved.json";
  write_text(moved, Json{{"hidden_states", nested}}.dump());
  out = corral(
      *store_,
      "debug tensors tiny -t 1 --tokens " + ids_of(c) + " --compare '" + moved.string() + "'",
      &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("first divergence: blk.0.out"), std::string::npos) << out;

  // Other tokens than the reference's: the sizes disagree, and the error says so.
  out = corral(*store_, "debug tensors tiny --tokens 1,2 --compare '" + moved.string() + "'",
               &status, true);
  EXPECT_NE(status, 0);
  EXPECT_NE(out.find("same tokens?"), std::string::npos) << out;
}

// Gemma 3 (created from tiny-gemma3, whose prompt is longer than its sliding window): the scaled
// embeddings, every block and the final norm as transformers returned them.
TEST(DebugTensorsGemma3, JsonReproducesTransformersHiddenStates) {
  TempDir store, work;
  const std::string folder = testdata_path("reference/tiny-gemma3");
  write_text(work.path() / "Modelfile", "FROM " + folder + "\n");
  int status = -1;
  corral(store, "create g3 -q F32 -f '" + (work.path() / "Modelfile").string() + "'", &status);
  ASSERT_EQ(status, 0) << "corral create g3 -q F32 failed";
  std::ifstream in(folder + "/reference.json");
  const Json c = Json::parse(in)["cases"][0];
  std::string ids;
  for (const Json& id : c["input_ids"]) ids += (ids.empty() ? "" : ",") + id.dump();
  const std::string out = corral(store, "debug tensors g3 --json -t 1 --tokens " + ids, &status);
  ASSERT_EQ(status, 0) << out;
  const Json got = Json::parse(out);
  std::map<std::string, Json> by_name;
  for (const Json& t : got["tensors"]) by_name[t["name"]] = t;
  const size_t n_layer = c["hidden_states_shape"][0].get<size_t>() - 1;
  ASSERT_TRUE(by_name.count("token_embd.out"));
  EXPECT_LT(max_error(by_name["token_embd.out"], c, 0), 1e-4) << "token_embd.out";
  for (size_t il = 0; il + 1 < n_layer; ++il) {
    const std::string name = "blk." + std::to_string(il) + ".out";
    ASSERT_TRUE(by_name.count(name)) << name;
    // The residual stream grows through Gemma's layers: relative to its size.
    double scale = 1;
    for (const Json& v : by_name[name]["values"])
      scale = std::max(scale, std::fabs(v.get<double>()));
    EXPECT_LT(max_error(by_name[name], c, il + 1), 1e-4 * scale) << name;
  }
  ASSERT_TRUE(by_name.count("output_norm.out"));
  EXPECT_LT(max_error(by_name["output_norm.out"], c, n_layer), 1e-4) << "output_norm.out";
}

}  // namespace
}  // namespace corral::testing
