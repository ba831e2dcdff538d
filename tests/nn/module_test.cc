#include "nn/module.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "backend/reference/reference.h"
#include "ml/gguf/writer.h"
#include "nn/attention.h"
#include "nn/linear.h"
#include "nn/norm.h"

namespace corral::nn {
namespace {

// A GGUF in memory built from named f32 (or f16-typed) tensors of random values.
struct MemoryFile {
  std::vector<std::vector<uint8_t>> data;
  std::vector<uint8_t> bytes;
  ml::gguf::Writer writer;

  void add(const std::string& name, std::vector<int64_t> ne, ml::DType t = ml::DType::F32,
           uint32_t seed = 1) {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto& v = data.emplace_back(ml::row_size(t, n));
    if (t == ml::DType::F32) {
      for (int64_t i = 0; i < n; ++i) {
        const float x = u(rng);
        std::memcpy(v.data() + 4 * i, &x, 4);
      }
    }
    writer.add_tensor(name, t, ne, v);
  }
  ml::gguf::File file() {
    bytes = writer.to_bytes();
    return ml::gguf::File::parse(bytes, "test.gguf");
  }
};

struct Block : Module {
  using Module::Module;
  RMSNorm attn_norm{*this, "attn_norm", 8};
  Linear attn_q{*this, "attn_q", 8, 16};
};

TEST(Module, NamesComposeFromTheTreeAndEmptyNamesAreTransparent) {
  Module root;
  Module blk(root, "blk");
  Block b(blk, "3");
  EXPECT_EQ(b.attn_q.weight.full_name(), "blk.3.attn_q.weight");
  EXPECT_EQ(b.attn_q.bias.full_name(), "blk.3.attn_q.bias");
  Attention attn(b, {.n_embd = 8, .n_head = 2, .n_head_kv = 1, .head_dim_k = 4, .head_dim_v = 4});
  EXPECT_EQ(attn.attn_k.weight.full_name(), "blk.3.attn_k.weight");
}

TEST(Binder, BindsIntoTheMappingWithoutCopyingAndUsesAnOptionalBiasWhenPresent) {
  MemoryFile mf;
  mf.add("blk.0.attn_norm.weight", {8});
  mf.add("blk.0.attn_q.weight", {8, 16});
  mf.add("blk.0.attn_q.bias", {16});
  const auto file = mf.file();
  Module root;
  Module blk(root, "blk");
  Block b(blk, "0");
  Binder binder(file);
  binder.bind(root);
  EXPECT_TRUE(binder.unused().empty());
  ASSERT_TRUE(b.attn_q.bias.present());
  ml::Graph g;
  EXPECT_EQ(b.attn_q.weight.leaf(g).data(), file.tensor("blk.0.attn_q.weight").data);

  // y = W x + b, computed by the reference backend, against the plain sum.
  std::vector<float> x(8, 0.5f);
  ml::Tensor in = g.leaf(ml::DType::F32, {8, 1}, x.data());
  ml::Tensor y = b.attn_q.forward(in);
  auto backend = backend::reference::make_backend();
  ml::Executor ex({backend.get()});
  ex.compute(g, {y});
  const auto* w = reinterpret_cast<const float*>(file.tensor("blk.0.attn_q.weight").data);
  const auto* bias = reinterpret_cast<const float*>(file.tensor("blk.0.attn_q.bias").data);
  for (int o = 0; o < 16; ++o) {
    float want = bias[o];
    for (int i = 0; i < 8; ++i) want += w[o * 8 + i] * 0.5f;
    EXPECT_NEAR(static_cast<const float*>(y.data())[o], want, 1e-5f);
  }
}

TEST(Binder, ReportsEveryProblemByFullNameAndTheUnconsumedTensors) {
  MemoryFile mf;
  mf.add("blk.0.attn_norm.weight", {8}, ml::DType::F16);  // norms must be f32
  mf.add("blk.0.attn_q.weight", {8, 15});                 // wrong shape
  mf.add("blk.1.attn_norm.weight", {8});
  mf.add("blk.1.extra.weight", {4});
  const auto file = mf.file();
  Module root;
  Module blk(root, "blk");
  Block b0(blk, "0"), b1(blk, "1");
  Binder binder(file);
  try {
    binder.bind(root);
    FAIL() << "bound";
  } catch (const BindError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("test.gguf"), std::string::npos) << msg;
    EXPECT_NE(msg.find("3 problems"), std::string::npos) << msg;
    EXPECT_NE(msg.find("tensor blk.0.attn_norm.weight has dtype f16, expected f32"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("tensor blk.0.attn_q.weight has shape [8, 15], expected [8, 16]"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("missing tensor blk.1.attn_q.weight, expected shape [8, 16]"),
              std::string::npos)
        << msg;
  }
  EXPECT_EQ(binder.unused(),
            (std::vector<std::string>{"blk.0.attn_norm.weight", "blk.0.attn_q.weight",
                                      "blk.1.extra.weight"}));
}

TEST(Binder, AnAlternateSiblingStandsInForAnAbsentTensor) {
  MemoryFile mf;
  mf.add("token_embd.weight", {8, 32});
  const auto file = mf.file();
  Module root;
  Linear output(root, "output", 8, 32, Bias::kOptional, "token_embd");
  Binder binder(file);
  binder.bind(root);
  EXPECT_EQ(output.weight.info(), &file.tensor("token_embd.weight"));
}

}  // namespace
}  // namespace corral::nn
