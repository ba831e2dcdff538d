#include "nn/attention.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "backend/cpu/cpu.h"
#include "backend/reference/reference.h"
#include "ml/gguf/writer.h"

namespace corral::nn {
namespace {

constexpr int64_t kEmbd = 24, kHead = 6, kHeadKv = 2, kHeadDim = 8;

struct Weights {
  std::vector<std::vector<float>> data;
  std::vector<uint8_t> bytes;
  ml::gguf::File file = make();

  ml::gguf::File make() {
    ml::gguf::Writer w;
    std::mt19937 rng(3);
    std::normal_distribution<float> normal(0.0f, 0.4f);
    data.reserve(8);
    auto add = [&](const std::string& name, std::vector<int64_t> ne) {
      auto& v = data.emplace_back(static_cast<size_t>(ne[0] * (ne.size() > 1 ? ne[1] : 1)));
      for (float& x : v) x = normal(rng);
      w.add_tensor(name, ml::DType::F32, ne,
                   {reinterpret_cast<const uint8_t*>(v.data()), v.size() * 4});
    };
    add("attn_q.weight", {kEmbd, kHead * kHeadDim});
    add("attn_q.bias", {kHead * kHeadDim});
    add("attn_k.weight", {kEmbd, kHeadKv * kHeadDim});
    add("attn_v.weight", {kEmbd, kHeadKv * kHeadDim});
    add("attn_output.weight", {kHead * kHeadDim, kEmbd});
    bytes = w.to_bytes();
    return ml::gguf::File::parse(bytes, "attention.gguf");
  }
};

struct Layer : Module {
  explicit Layer(bool flash)
      : attn(*this, {.n_embd = kEmbd,
                     .n_head = kHead,
                     .n_head_kv = kHeadKv,
                     .head_dim_k = kHeadDim,
                     .head_dim_v = kHeadDim,
                     .flash = flash}) {}
  Attention attn;
  RoPE rope{*this, "rope_freqs", {.mode = ml::op::RopeMode::kNeox, .n_dims = kHeadDim}};
};

// Outputs of a 7-token prefill of one sequence and a 3-token batch of a second, then a decode.
std::vector<float> run(const std::string& backend_name, bool flash, ml::DType cache_type) {
  Weights w;
  Layer layer(flash);
  Binder(w.file).bind(layer);
  auto backend = backend_name == "reference" ? backend::reference::make_backend()
                                             : backend::cpu::make_backend({.n_threads = 1});
  ml::Executor ex({backend.get()});
  kvcache::Causal cache(1, kHeadKv, kHeadDim, kHeadDim, {.num_ctx = 32, .dtype = cache_type});
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> out;
  const std::vector<std::vector<int32_t>> positions = {{0, 1, 2, 3, 4, 5, 6}, {0, 1, 2}, {7, 3}};
  const std::vector<std::vector<int32_t>> seqs = {{0, 0, 0, 0, 0, 0, 0}, {1, 1, 1}, {0, 1}};
  for (size_t step = 0; step < positions.size(); ++step) {
    const auto n = static_cast<int64_t>(positions[step].size());
    std::vector<float> x(static_cast<size_t>(n * kEmbd));
    for (float& v : x) v = normal(rng);
    ml::Graph g;
    cache.start_forward(g, positions[step], seqs[step]);
    ml::Tensor in = g.leaf(ml::DType::F32, {kEmbd, n}, x.data());
    ml::Tensor pos = g.leaf(ml::DType::I32, {n}, const_cast<int32_t*>(positions[step].data()));
    ml::Tensor y = layer.attn.forward(in, pos, layer.rope, cache, 0);
    ex.compute(g, {y});
    const auto* p = static_cast<const float*>(y.data());
    out.insert(out.end(), p, p + y.nelements());
  }
  return out;
}

float max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float d = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

class AttentionOn : public ::testing::TestWithParam<std::string> {};

TEST_P(AttentionOn, FlashAndComposedSoftmaxAgreeWithGroupedHeadsAndTwoSequences) {
  for (ml::DType t : {ml::DType::F32, ml::DType::F16}) {
    const std::vector<float> flash = run(GetParam(), true, t);
    const std::vector<float> composed = run(GetParam(), false, t);
    ASSERT_EQ(flash.size(), static_cast<size_t>(12 * kEmbd));
    EXPECT_LE(max_diff(flash, composed), 1e-4f) << ml::dtype_name(t);
  }
}

TEST(Attention, CpuMatchesReference) {
  EXPECT_LE(max_diff(run("cpu", true, ml::DType::F16), run("reference", true, ml::DType::F16)),
            1e-3f);
  EXPECT_LE(max_diff(run("cpu", false, ml::DType::F32), run("reference", false, ml::DType::F32)),
            1e-4f);
}

INSTANTIATE_TEST_SUITE_P(Backends, AttentionOn, ::testing::Values("cpu", "reference"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace corral::nn
