#include <gtest/gtest.h>

#include <vector>

#include "backend/reference/reference.h"
#include "ml/backend.h"
#include "ml/graph.h"

namespace corral::ml {
namespace {

TEST(Graph, MulMatRejectsMismatchedInnerDimensionNamingBothShapes) {
  Graph g;
  Tensor w = g.leaf(DType::F32, {64, 32});
  Tensor x = g.leaf(DType::F32, {63, 1});
  try {
    mul_mat(w, x);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("mul_mat"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[64, 32, 1, 1]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[63, 1, 1, 1]"), std::string::npos) << msg;
  }
}

TEST(Graph, PermuteMovesShapeAndStrides) {
  Graph g;
  Tensor a = g.leaf(DType::F32, {4, 3, 2});
  Tensor p = permute(a, 2, 0, 1, 3);  // dim0 -> 2, dim1 -> 0, dim2 -> 1
  EXPECT_EQ(p.shape(), (Shape{3, 2, 4, 1}));
  EXPECT_EQ(p.nb(2), 4u);
  EXPECT_EQ(p.nb(0), 16u);
}

TEST(MemoryPlan, ReusesBuffersOfDeadIntermediates) {
  Graph g;
  Tensor x = g.leaf(DType::F32, {1024});
  Tensor t = x;
  for (int i = 0; i < 10; ++i) t = scale(t, 2.0f);
  std::vector<int> order;
  for (int id = 1; id < g.size(); ++id) order.push_back(id);
  const int out[] = {t.id()};
  MemoryPlan plan = plan_memory(g, order, out);
  // A chain needs two live buffers at a time, not ten.
  EXPECT_LE(plan.size, 2 * 4096u);
  EXPECT_NE(plan.offset[1], plan.offset[2]);
}

TEST(MemoryPlan, OutputsAreNeverOverwritten) {
  Graph g;
  Tensor x = g.leaf(DType::F32, {256});
  Tensor a = scale(x, 2.0f);
  Tensor b = scale(a, 3.0f);
  Tensor c = scale(b, 4.0f);
  Tensor d = scale(c, 5.0f);
  std::vector<int> order = {a.id(), b.id(), c.id(), d.id()};
  const int outs[] = {a.id(), d.id()};
  MemoryPlan plan = plan_memory(g, order, outs);
  for (int id : {b.id(), c.id(), d.id()}) EXPECT_NE(plan.offset[id], plan.offset[a.id()]);
}

TEST(Executor, ReusesThePlanWhileTheGraphShapeRepeats) {
  auto ref = backend::reference::make_backend();
  Executor ex({ref.get()});
  Graph g;
  std::vector<float> x(16), cache(16 * 8);
  for (size_t i = 0; i < cache.size(); ++i) cache[i] = static_cast<float>(i % 7);
  for (int64_t n_kv = 1; n_kv <= 8; ++n_kv) {
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) + n_kv;
    g.clear();
    Tensor a = g.leaf(DType::F32, {16}, x.data(), "x");
    Tensor c = g.leaf(DType::F32, {16, 8}, cache.data(), "cache");
    Tensor kv = view(c, {16, n_kv, 1, 1}, c.node().nb, 0);
    Tensor s = cont(transpose(kv));  // [n_kv, 16]
    Tensor y = add(scale(a, 2.0f), reshape(sum_rows(s), {16}));
    ex.compute(g, {y});
    const auto* out = static_cast<const float*>(y.data());
    for (int64_t i = 0; i < 16; ++i) {
      float want = 2.0f * x[i];
      for (int64_t r = 0; r < n_kv; ++r) want += cache[r * 16 + i];
      ASSERT_FLOAT_EQ(out[i], want) << "n_kv " << n_kv << " i " << i;
    }
  }
  // The cont of the growing view owns memory, so its size is part of the shape: one plan per
  // n_kv. A graph whose growing tensors are all views plans once.
  EXPECT_EQ(ex.plans_made(), 8u);
  for (int step = 0; step < 3; ++step) {
    g.clear();
    Tensor a = g.leaf(DType::F32, {16}, x.data(), "x");
    Tensor c = g.leaf(DType::F32, {16, 8}, cache.data(), "cache");
    Tensor kv = view(c, {16, step + 1, 1, 1}, c.node().nb, 0);
    Tensor y = add(scale(a, 2.0f), reshape(cont(view(kv, {16, 1, 1, 1}, kv.node().nb, 0)), {16}));
    ex.compute(g, {y});
    const auto* out = static_cast<const float*>(y.data());
    for (int64_t i = 0; i < 16; ++i) ASSERT_FLOAT_EQ(out[i], 2.0f * x[i] + cache[i]);
  }
  EXPECT_EQ(ex.plans_made(), 9u);
}

TEST(Executor, ReplansWhenTheOutputsChange) {
  auto ref = backend::reference::make_backend();
  Executor ex({ref.get()});
  Graph g;
  std::vector<float> x(64, 1.0f);
  Tensor a = g.leaf(DType::F32, {64}, x.data(), "x");
  Tensor b = scale(a, 2.0f);
  Tensor c = scale(b, 3.0f);
  Tensor d = scale(c, 5.0f);
  ex.compute(g, {d});
  EXPECT_FLOAT_EQ(static_cast<const float*>(d.data())[0], 30.0f);
  // b was dead after c ran; asked for now, it must survive to the end.
  ex.compute(g, {b, d});
  EXPECT_EQ(ex.plans_made(), 2u);
  EXPECT_FLOAT_EQ(static_cast<const float*>(b.data())[0], 2.0f);
  EXPECT_FLOAT_EQ(static_cast<const float*>(d.data())[0], 30.0f);
  ex.compute(g, {d});
  EXPECT_EQ(ex.plans_made(), 2u);
}

TEST(Executor, RejectsALeafWithoutDataEvenWithAReusedPlan) {
  auto ref = backend::reference::make_backend();
  Executor ex({ref.get()});
  Graph g;
  std::vector<float> x(8, 1.0f);
  Tensor a = g.leaf(DType::F32, {8}, x.data(), "x");
  Tensor b = scale(a, 2.0f);
  ex.compute(g, {b});
  a.node().data = nullptr;
  EXPECT_THROW(ex.compute(g, {b}), std::invalid_argument);
}

}  // namespace
}  // namespace corral::ml
