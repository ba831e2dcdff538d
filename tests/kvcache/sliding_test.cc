#include "kvcache/sliding.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "backend/reference/reference.h"

namespace corral::kvcache {
namespace {

std::vector<int32_t> iota(int32_t from, int32_t n) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = from + i;
  return v;
}

// Whether token t of the last batch may attend cell c.
bool sees(const Causal& cache, int64_t t, int64_t c) {
  return cache.mask()[static_cast<size_t>(t * cache.n_kv() + c)] == 0.0f;
}

// Layer 0 slides (window 3), layer 1 is full: a token sees the 3 positions ending at its own in
// the sliding cells (transformers: kv_idx > q_idx - sliding_window), all earlier ones in the
// full cells.
TEST(SlidingCache, MaskIsTheLastWindowPositionsIncludingTheTokenItself) {
  Causal cache(2, 1, 4, 4,
               {.num_ctx = 32,
                .dtype = ml::DType::F32,
                .pad = 1,
                .window = 3,
                .sliding = {true, false},
                .max_batch = 8});
  ASSERT_NE(cache.sliding(), nullptr);
  const Causal& swa = *cache.sliding();
  EXPECT_EQ(swa.num_ctx(), 2 + 8);
  ml::Graph g;
  cache.start_forward(g, iota(0, 6), std::vector<int32_t>(6, 0));
  for (int64_t t = 0; t < 6; ++t) {
    for (int64_t c = 0; c < swa.n_kv(); ++c) {
      // Cell c holds position c.
      EXPECT_EQ(sees(swa, t, c), c <= t && t - c < 3) << "token " << t << " cell " << c;
      EXPECT_EQ(sees(cache, t, c), c <= t) << "token " << t << " cell " << c;
    }
  }
  // The next batch (positions 6, 7) frees positions below 6 - 3 + 1 = 4 first.
  cache.start_forward(g, iota(6, 2), std::vector<int32_t>(2, 0));
  EXPECT_EQ(swa.used_cells(), 4);  // 4, 5, 6, 7
  EXPECT_EQ(cache.used_cells(), 8);
  EXPECT_EQ(cache.reusable(0, 8), 8);
  EXPECT_EQ(cache.reusable(0, 5), 0);  // position 3 is gone from the sliding cells
  EXPECT_EQ(cache.reusable(0, 0), 0);
}

TEST(SlidingCache, ABatchBeyondTheSlidingCellsIsFullAndLeavesTheFullCellsAsTheyWere) {
  Causal cache(2, 1, 4, 4,
               {.num_ctx = 32,
                .dtype = ml::DType::F32,
                .window = 3,
                .sliding = {true, false},
                .max_batch = 4});
  ml::Graph g;
  EXPECT_THROW(cache.start_forward(g, iota(0, 7), std::vector<int32_t>(7, 0)), FullError);
  EXPECT_EQ(cache.used_cells(), 0);
  cache.start_forward(g, iota(0, 4), std::vector<int32_t>(4, 0));
  cache.start_forward(g, iota(4, 4), std::vector<int32_t>(4, 0));
  EXPECT_EQ(cache.used_cells(), 8);
  EXPECT_EQ(cache.sliding()->used_cells(), 6);
}

// Per-sequence ranges (the runner's layout) shrink to the window and a batch each.
TEST(SlidingCache, SequenceRangesShrinkToTheWindowAndABatch) {
  const CausalOptions o{.num_ctx = 4 * 100, .seq_cells = 100, .window = 10, .max_batch = 16};
  const CausalOptions s = sliding_options(o);
  EXPECT_EQ(s.seq_cells, 25);
  EXPECT_EQ(s.num_ctx, 100);
  Causal cache(1, 1, 4, 4,
               {.num_ctx = 400,
                .dtype = ml::DType::F32,
                .seq_cells = 100,
                .window = 10,
                .sliding = {true},
                .max_batch = 16});
  ml::Graph g;
  cache.start_forward(g, iota(0, 16), std::vector<int32_t>(16, 3));
  for (int32_t c : cache.sliding()->batch_cells()) {
    EXPECT_GE(c, 75);
    EXPECT_LT(c, 100);
  }
}

// Several sequences in one batch: each token's window is over its own sequence.
TEST(SlidingCache, WindowIsCheckedPerSequence) {
  Causal cache(1, 1, 4, 4,
               {.num_ctx = 32,
                .dtype = ml::DType::F32,
                .pad = 1,
                .window = 2,
                .sliding = {true},
                .max_batch = 8,
                .max_seqs = 2});
  ml::Graph g;
  cache.start_forward(g, std::vector<int32_t>{0, 1, 0, 1, 2}, std::vector<int32_t>{0, 0, 1, 1, 1});
  const Causal& swa = *cache.sliding();
  // Token 4 (sequence 1, position 2) sees positions 1 and 2 of its own sequence only.
  EXPECT_FALSE(sees(swa, 4, 0));
  EXPECT_FALSE(sees(swa, 4, 1));
  EXPECT_FALSE(sees(swa, 4, 2));
  EXPECT_TRUE(sees(swa, 4, 3));
  EXPECT_TRUE(sees(swa, 4, 4));
}

// Context shift moves the sliding cells by the full cells' amount: both then hold the same
// positions, and the next token's window is over the moved ones.
TEST(SlidingCache, ContextShiftMovesTheSlidingCellsWithTheFullOnes) {
  Causal cache(2, 1, 4, 4,
               {.num_ctx = 16,
                .dtype = ml::DType::F32,
                .pad = 1,
                .window = 4,
                .sliding = {true, false},
                .max_batch = 4});
  ml::Graph g;
  cache.start_forward(g, iota(0, 4), std::vector<int32_t>(4, 0));
  for (int32_t p = 4; p < 12; ++p) cache.start_forward(g, iota(p, 1), std::vector<int32_t>(1, 0));
  const Causal& swa = *cache.sliding();
  EXPECT_EQ(swa.used_cells(), 4);  // positions 8..11
  auto backend = backend::reference::make_backend();
  ml::Executor executor({backend.get()});
  int rotated_layers = 0;
  const int32_t discarded =
      cache.shift(executor, 0, 2, [&](ml::Tensor keys, ml::Tensor delta, int layer) {
        (void)delta;
        (void)layer;
        ++rotated_layers;
        return keys;
      });
  EXPECT_EQ(discarded, 5);  // (12 - 2) / 2
  EXPECT_EQ(rotated_layers, 2);
  EXPECT_EQ(cache.next_position(0), 7);
  EXPECT_EQ(swa.next_position(0), 7);
  EXPECT_EQ(cache.used_cells(), 7);
  EXPECT_EQ(swa.used_cells(), 4);  // 8..11 became 3..6
  EXPECT_EQ(cache.reusable(0, 7), 7);
  cache.start_forward(g, iota(7, 1), std::vector<int32_t>(1, 0));
  EXPECT_EQ(swa.used_cells(), 4);  // 4..7: position 3 fell out of the window
}

}  // namespace
}  // namespace corral::kvcache
