// Every op case of the harness on every backend under test, against the reference backend.
// Test names read Ops/OpsTest.Run/<backend>_<case>, e.g. cpu_mul_mat_q4_K_k256_m17_n1.
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <memory>

#include "backend/reference/reference.h"
#include "op_harness.h"

namespace corral::testing {
namespace {

struct OpParam {
  size_t backend;
  size_t op_case;
};

const std::vector<OpCase>& cases();
const std::vector<BackendUnderTest>& backends();

// Test listings print the case, not the parameter's bytes.
void PrintTo(const OpParam& p, std::ostream* os) {
  *os << backends()[p.backend].name << " " << cases()[p.op_case].name;
}

const std::vector<OpCase>& cases() {
  static const std::vector<OpCase> kCases = all_op_cases();
  return kCases;
}
const std::vector<BackendUnderTest>& backends() {
  static const std::vector<BackendUnderTest> kBackends = backends_under_test();
  return kBackends;
}

class OpsTest : public ::testing::TestWithParam<OpParam> {
 protected:
  // Backends are built once for the suite (the CPU backend owns a thread pool).
  static void SetUpTestSuite() {
    reference_ = backend::reference::make_backend().release();
    instances_ = new std::vector<std::unique_ptr<ml::Backend>>();
    reasons_ = new std::vector<std::string>();
    for (const BackendUnderTest& b : backends()) {
      reasons_->push_back(b.unavailable());
      instances_->push_back(reasons_->back().empty() ? b.make() : nullptr);
    }
  }
  static void TearDownTestSuite() {
    delete instances_;
    instances_ = nullptr;
    delete reasons_;
    reasons_ = nullptr;
    delete reference_;
    reference_ = nullptr;
  }

  static ml::Backend* reference_;
  static std::vector<std::unique_ptr<ml::Backend>>* instances_;
  static std::vector<std::string>* reasons_;  // why a backend is absent ("" when present)
};
ml::Backend* OpsTest::reference_ = nullptr;
std::vector<std::unique_ptr<ml::Backend>>* OpsTest::instances_ = nullptr;
std::vector<std::string>* OpsTest::reasons_ = nullptr;

TEST_P(OpsTest, Run) {
  const OpCase& c = cases()[GetParam().op_case];
  if (!(*instances_)[GetParam().backend]) {
    GTEST_SKIP() << backends()[GetParam().backend].name
                 << " backend unavailable: " << (*reasons_)[GetParam().backend];
  }
  ml::Backend& tested = *(*instances_)[GetParam().backend];
  const uint64_t seed = seed_for(c.name);
  const CaseRun want = run_case(c, nullptr, *reference_, seed);
  const CaseRun got = run_case(c, &tested, *reference_, seed);
  if (!got.supported) {
    GTEST_SKIP() << tested.name() << " does not support " << c.name << " (it ran on the reference)";
  }
  EXPECT_TRUE(got.ran_on_tested) << c.name << " claimed support but ran elsewhere";
  ASSERT_EQ(got.values.size(), want.values.size());
  const double err = nmse(got.values, want.values);
  EXPECT_LE(err, c.max_nmse) << c.name << " on " << tested.name() << ": NMSE " << err
                             << " over bound " << c.max_nmse;
}

std::vector<OpParam> all_params() {
  std::vector<OpParam> params;
  for (size_t b = 0; b < backends().size(); ++b) {
    for (size_t c = 0; c < cases().size(); ++c) {
      if (backends()[b].covers(cases()[c])) params.push_back({b, c});
    }
  }
  return params;
}

INSTANTIATE_TEST_SUITE_P(Ops, OpsTest, ::testing::ValuesIn(all_params()),
                         [](const ::testing::TestParamInfo<OpParam>& info) {
                           return backends()[info.param.backend].name + "_" +
                                  cases()[info.param.op_case].name;
                         });

// ---- the harness itself ----

// A backend that claims add but computes a - b: the harness must notice.
class WrongAddBackend final : public ml::Backend {
 public:
  std::string_view name() const override { return "wrong_add"; }
  bool supports(const ml::Graph&, const ml::Node& n) const override {
    return n.kind() == ml::OpKind::kAdd;
  }
  void compute(const ml::Graph& g, std::span<const int> nodes) override {
    for (int id : nodes) {
      const ml::Node& n = g.node(id);
      const auto* a = static_cast<const float*>(g.node(n.src[0]).data);
      const auto* b = static_cast<const float*>(g.node(n.src[1]).data);
      auto* out = static_cast<float*>(n.data);
      for (int64_t i = 0; i < n.nelements(); ++i) out[i] = a[i] - b[i];
    }
  }
};

// Supports nothing: every node falls back to the reference.
class EmptyBackend final : public ml::Backend {
 public:
  std::string_view name() const override { return "empty"; }
  bool supports(const ml::Graph&, const ml::Node&) const override { return false; }
  void compute(const ml::Graph&, std::span<const int>) override {}
};

const OpCase& case_named(const std::string& name) {
  for (const OpCase& c : cases()) {
    if (c.name == name) return c;
  }
  throw std::invalid_argument("no op case " + name);
}

TEST(OpHarness, CaseNamesAreUniqueAndTestNameSafe) {
  std::map<std::string, int> seen;
  for (const OpCase& c : cases()) {
    EXPECT_EQ(seen[c.name]++, 0) << "duplicate case " << c.name;
    for (char ch : c.name) {
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_') << c.name;
    }
  }
  EXPECT_GT(cases().size(), 500u);
}

TEST(OpHarness, DetectsAKernelThatComputesTheWrongOp) {
  auto reference = backend::reference::make_backend();
  WrongAddBackend wrong;
  const OpCase& c = case_named("add_w33");
  const uint64_t seed = seed_for(c.name);
  const CaseRun want = run_case(c, nullptr, *reference, seed);
  const CaseRun got = run_case(c, &wrong, *reference, seed);
  EXPECT_TRUE(got.supported);
  EXPECT_TRUE(got.ran_on_tested);
  EXPECT_GT(nmse(got.values, want.values), 0.1);
}

TEST(OpHarness, NoticesWhenTheOpRanOnTheFallback) {
  auto reference = backend::reference::make_backend();
  EmptyBackend empty;
  const OpCase& c = case_named("add_w33");
  const CaseRun got = run_case(c, &empty, *reference, seed_for(c.name));
  EXPECT_FALSE(got.supported);
  EXPECT_FALSE(got.ran_on_tested);
}

TEST(OpHarness, SameSeedBuildsIdenticalInputs) {
  auto reference = backend::reference::make_backend();
  const OpCase& c = case_named("softmax_mask_f16_w33");
  const CaseRun a = run_case(c, nullptr, *reference, 7);
  const CaseRun b = run_case(c, nullptr, *reference, 7);
  const CaseRun other = run_case(c, nullptr, *reference, 8);
  EXPECT_EQ(a.values, b.values);
  EXPECT_NE(a.values, other.values);
}

// Says which of the CPU backend's kernel variants this machine runs (the others' cases skip),
// so a log shows what was tested where.
TEST(OpHarness, ReportsWhichKernelVariantsRunHere) {
  int runs = 0;
  for (const KernelVariant& v : kernel_variants()) {
    std::cout << "[  NOTE    ] kernel variant " << v.name << ": "
              << (v.runs_here ? "runs on this CPU" : "not run (this CPU lacks it)") << "\n";
    RecordProperty("variant_" + v.name, v.runs_here ? "ran" : "not_run");
    runs += v.runs_here;
  }
  EXPECT_TRUE(kernel_variants().front().runs_here) << "the scalar kernels run everywhere";
  EXPECT_GE(runs, 1);
}

TEST(OpHarness, NmseIsRelativeAndRejectsNan) {
  const std::vector<float> want = {1, -2, 3, 4};
  EXPECT_EQ(nmse(want, want), 0.0);
  const std::vector<float> off = {1.1f, -2, 3, 4};
  EXPECT_NEAR(nmse(off, want), 0.01 / 30.0, 1e-8);
  const std::vector<float> nan = {std::nanf(""), -2, 3, 4};
  EXPECT_TRUE(std::isinf(nmse(nan, want)));
}

}  // namespace
}  // namespace corral::testing
