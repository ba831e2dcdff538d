#include "kvcache/causal.h"

#include <gtest/gtest.h>

#include <cmath>

namespace corral::kvcache {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<int32_t> v(std::initializer_list<int32_t> x) { return x; }

// Whether token t of the last batch may attend cell c.
bool sees(const Causal& cache, int64_t t, int64_t c) {
  return cache.mask()[static_cast<size_t>(t * cache.n_kv() + c)] == 0.0f;
}

TEST(CausalCache, TokensSeeTheirOwnSequenceUpToTheirPosition) {
  Causal cache(1, 2, 4, 4, {.num_ctx = 16, .dtype = ml::DType::F32, .pad = 4});
  ml::Graph g;
  // Sequence 0 at positions 0..2, sequence 1 at 0..1, interleaved in one batch.
  const auto pos = v({0, 0, 1, 1, 2}), seq = v({0, 1, 0, 1, 0});
  cache.start_forward(g, pos, seq);
  EXPECT_EQ(cache.n_kv(), 8);  // 5 cells used, padded to 4
  const auto cells = cache.batch_cells();
  ASSERT_EQ(cells.size(), 5u);
  for (int64_t t = 0; t < 5; ++t) {
    for (int64_t c = 0; c < cache.n_kv(); ++c) {
      // Cell c holds token c of the batch (cells are handed out in order).
      const bool want = c < 5 && seq[c] == seq[t] && pos[c] <= pos[t];
      EXPECT_EQ(sees(cache, t, c), want) << "token " << t << " cell " << c;
      if (!want) EXPECT_EQ(cache.mask()[t * cache.n_kv() + c], -kInf);
    }
  }
  EXPECT_EQ(cache.next_position(0), 3);
  EXPECT_EQ(cache.next_position(1), 2);
}

TEST(CausalCache, RemovedCellsAreReusedAndSharedCellsStayWhileOneSequenceHoldsThem) {
  Causal cache(1, 1, 4, 4, {.num_ctx = 8, .dtype = ml::DType::F16, .pad = 1});
  ml::Graph g;
  cache.start_forward(g, v({0, 1, 2, 3}), v({0, 0, 0, 0}));
  cache.copy_prefix(0, 5, 2);  // sequence 5 shares positions 0 and 1
  cache.remove(0);
  EXPECT_EQ(cache.used_cells(), 2);
  EXPECT_EQ(cache.next_position(5), 2);
  cache.start_forward(g, v({2}), v({5}));
  EXPECT_EQ(cache.batch_cells()[0], 2);  // the first free cell
  EXPECT_EQ(cache.n_kv(), 3);
  EXPECT_TRUE(sees(cache, 0, 0));
  EXPECT_TRUE(sees(cache, 0, 1));
  EXPECT_TRUE(sees(cache, 0, 2));
}

TEST(CausalCache, ABatchThatDoesNotFitThrowsAndChangesNothing) {
  Causal cache(2, 1, 4, 4, {.num_ctx = 4});
  ml::Graph g;
  cache.start_forward(g, v({0, 1, 2}), v({0, 0, 0}));
  EXPECT_THROW(cache.start_forward(g, v({3, 4}), v({0, 0})), FullError);
  EXPECT_EQ(cache.used_cells(), 3);
  EXPECT_EQ(cache.next_position(0), 3);
  cache.start_forward(g, v({3}), v({0}));
  EXPECT_EQ(cache.used_cells(), 4);
}

TEST(CausalCache, RejectsQuantizedStorage) {
  EXPECT_THROW(Causal(1, 1, 32, 32, {.num_ctx = 4, .dtype = ml::DType::Q8_0}),
               std::invalid_argument);
}

}  // namespace
}  // namespace corral::kvcache
