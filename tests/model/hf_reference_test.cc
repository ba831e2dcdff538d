// Architectures against transformers' float32 outputs (reference.json beside each checkpoint):
// logits at every prompt position, and greedy continuations up to the first step whose top-2
// margin is too small to decide.
#include <gtest/gtest.h>

#include "model/harness.h"
#include "model/hf_checkpoint.h"

namespace corral::model {
namespace {

using testing::HfCheckpoint;
using testing::max_abs_diff;
using testing::Runner;

struct Case {
  const char* folder;
  const char* backend;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.folder << " on " << c.backend; }

class ModelHfReference : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    const std::string why = testing::unavailable(GetParam().backend);
    if (!why.empty()) GTEST_SKIP() << GetParam().backend << " backend unavailable: " << why;
  }
};

// Every checkpoint on every backend.
std::vector<Case> all_cases() {
  static const std::vector<std::string> kBackends = testing::backend_names();
  std::vector<Case> out;
  for (const char* folder :
       {"stories260K", "tiny-llama3", "tiny-qwen2", "tiny-qwen3", "tiny-gemma3"}) {
    for (const std::string& b : kBackends) out.push_back({folder, b.c_str()});
  }
  return out;
}

TEST_P(ModelHfReference, LogitsAndGreedyIdsMatchTransformers) {
  const HfCheckpoint ck(
      corral::testing::testdata_path(std::string("reference/") + GetParam().folder));
  const auto m = load(ck.file);
  EXPECT_TRUE(m->unused_tensors().empty());
  const int64_t n_vocab = m->config().n_vocab;
  Runner r(GetParam().backend);
  for (const auto& c : ck.reference.at("cases")) {
    const std::vector<int32_t> ids = c.at("input_ids");
    const std::vector<float> want = c.at("logits");
    ASSERT_EQ(want.size(), ids.size() * static_cast<size_t>(n_vocab));
    auto cache = m->make_cache({.num_ctx = 64, .dtype = ml::DType::F32});
    Batch b;
    for (size_t i = 0; i < ids.size(); ++i) b.add(ids[i], static_cast<int32_t>(i), 0, true);
    const std::vector<float> got = r.logits(*m, b, cache);
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_LE(max_abs_diff(&got[i * n_vocab], &want[i * n_vocab], n_vocab), 1e-4f)
          << c.at("name") << " position " << i;
    }

    const std::vector<int32_t> greedy_want = c.at("greedy_ids");
    const std::vector<float> margin = c.at("greedy_top2_margin");
    size_t decidable = 0;
    while (decidable < margin.size() && margin[decidable] >= 1e-3f) ++decidable;
    auto fresh = m->make_cache({.num_ctx = 256, .dtype = ml::DType::F32});
    const std::vector<int32_t> greedy_got =
        testing::greedy(r, *m, fresh, ids, static_cast<int>(greedy_want.size()));
    EXPECT_EQ(std::vector<int32_t>(greedy_got.begin(), greedy_got.begin() + decidable),
              std::vector<int32_t>(greedy_want.begin(), greedy_want.begin() + decidable))
        << c.at("name") << ": first " << decidable << " decidable steps";
  }
}

// llama.cpp's converter writes Llama 3 scaling as rope_freqs.weight: bound, consumed and giving
// the logits of the computed factors (which match transformers above).
TEST(HfReferenceLlama3, RopeFreqsTensorGivesTheLogitsOfTheScalingKeys) {
  const std::string dir = corral::testing::testdata_path("reference/tiny-llama3");
  const HfCheckpoint keys(dir, HfCheckpoint::Llama3Rope::kKeys);
  const HfCheckpoint tensor(dir, HfCheckpoint::Llama3Rope::kTensor);
  ASSERT_NE(tensor.file.find_tensor("rope_freqs.weight"), nullptr);
  const auto a = load(keys.file);
  const auto b = load(tensor.file);
  EXPECT_TRUE(b->unused_tensors().empty());
  const std::vector<int32_t> ids = keys.reference.at("cases")[1].at("input_ids");
  Batch batch;
  for (size_t i = 0; i < ids.size(); ++i) batch.add(ids[i], static_cast<int32_t>(i), 0, true);
  Runner r("reference");
  auto ca = a->make_cache({.num_ctx = 16, .dtype = ml::DType::F32});
  auto cb = b->make_cache({.num_ctx = 16, .dtype = ml::DType::F32});
  const std::vector<float> la = r.logits(*a, batch, ca);
  const std::vector<float> lb = r.logits(*b, batch, cb);
  EXPECT_EQ(la, lb);
}

INSTANTIATE_TEST_SUITE_P(Checkpoints, ModelHfReference, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) {
                           std::string n =
                               std::string(info.param.folder) + "_" + info.param.backend;
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n;
                         });

}  // namespace
}  // namespace corral::model
