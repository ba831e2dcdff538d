#include "kvcache/causal.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <utility>

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

// Offloaded layers take their buffers from the allocator; a null result falls back to host memory.
TEST(CausalCache, LayersComeFromTheAllocatorOrElseFromZeroedHostMemory) {
  std::vector<std::pair<int, size_t>> asked;
  int given = 0;
  CausalOptions o{.num_ctx = 8, .dtype = ml::DType::F16, .pad = 4};
  o.allocate = [&](int layer, size_t bytes) -> std::unique_ptr<ml::Buffer> {
    asked.emplace_back(layer, bytes);
    if (layer != 0) return nullptr;
    ++given;
    auto b = std::make_unique<ml::HostBuffer>(bytes);
    std::memset(b->data(), 0, bytes);  // the allocator's contract: zeroed
    return b;
  };
  Causal cache(2, 2, 4, 6, o);
  // Per layer: keys (2 heads x 4 x 8 cells x 2 bytes), then values (2 x 6 x 8 x 2).
  const std::vector<std::pair<int, size_t>> want = {{0, 128}, {0, 192}, {1, 128}, {1, 192}};
  EXPECT_EQ(asked, want);
  EXPECT_EQ(given, 2);
  ml::Graph g;
  cache.start_forward(g, v({0}), v({0}));
  // Layer 1's keys (the leaf under the attended view) are host memory, zeroed.
  std::vector<float> k(8), val(12);
  const auto entries = cache.update(1, g.leaf(ml::DType::F32, {4, 2, 1}, k.data()),
                                    g.leaf(ml::DType::F32, {6, 2, 1}, val.data()));
  const ml::Node& leaf = g.node(g.storage_root(entries.k.id()));
  ASSERT_EQ(leaf.kind(), ml::OpKind::kLeaf);
  const auto* bytes = static_cast<const uint8_t*>(leaf.data);
  for (size_t i = 0; i < 128; ++i) ASSERT_EQ(bytes[i], 0) << "byte " << i;
}

TEST(CausalCache, RejectsQuantizedStorage) {
  EXPECT_THROW(Causal(1, 1, 32, 32, {.num_ctx = 4, .dtype = ml::DType::Q8_0}),
               std::invalid_argument);
}

}  // namespace
}  // namespace corral::kvcache
