#include <gtest/gtest.h>

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

}  // namespace
}  // namespace corral::ml
