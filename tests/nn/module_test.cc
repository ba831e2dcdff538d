#include "nn/module.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "backend/reference/reference.h"
#include "ml/gguf/writer.h"
#include "nn/attention.h"
#include "nn/conv.h"
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

// The llama.cpp two-file layout: weights absent from the model file come from the projector;
// unconsumed tensors of both files are reported, the model file's first.
TEST(Binder, BindsAcrossTheModelAndProjectorFiles) {
  MemoryFile text, proj;
  text.add("blk.0.attn_norm.weight", {8});
  text.add("text.extra.weight", {2});
  proj.add("blk.0.attn_q.weight", {8, 16});
  proj.add("blk.0.attn_q.bias", {16});
  proj.add("v.extra.weight", {3});
  const auto tf = text.file();
  const auto pf = proj.file();
  Module root;
  Module blk(root, "blk");
  Block b0(blk, "0");
  Binder binder(tf, &pf);
  binder.bind(root);
  EXPECT_EQ(b0.attn_norm.weight.info(), tf.find_tensor("blk.0.attn_norm.weight"));
  EXPECT_EQ(b0.attn_q.weight.info(), pf.find_tensor("blk.0.attn_q.weight"));
  EXPECT_TRUE(b0.attn_q.bias.present());
  EXPECT_EQ(binder.unused(), (std::vector<std::string>{"text.extra.weight", "v.extra.weight"}));

  Module root2;
  Module blk2(root2, "blk");
  Block missing(blk2, "1");
  try {
    Binder(tf, &pf).bind(root2);
    FAIL() << "bound";
  } catch (const BindError& e) {
    EXPECT_NE(std::string(e.what()).find("with projector"), std::string::npos) << e.what();
  }
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

// PyTorch's Conv2d (cross-correlation, zero padding) plus a per-channel bias, and LayerNorm with
// weight and bias, each against plain loops.
TEST(Layers, Conv2DAndLayerNormComputeWhatPyTorchDefines) {
  MemoryFile mf;
  mf.add("patch.weight", {3, 3, 2, 4}, ml::DType::F32, 11);
  mf.add("patch.bias", {4}, ml::DType::F32, 12);
  mf.add("ln.weight", {4}, ml::DType::F32, 13);
  mf.add("ln.bias", {4}, ml::DType::F32, 14);
  const auto file = mf.file();
  Module root;
  Conv2D patch(root, "patch", {.s0 = 2, .s1 = 1, .p0 = 1, .p1 = 1}, 3, 3, 2, 4);
  LayerNorm ln(root, "ln", 4, 1e-5f);
  Binder binder(file);
  binder.bind(root);
  EXPECT_TRUE(binder.unused().empty());

  constexpr int W = 6, H = 5, C = 2;
  std::vector<float> image(W * H * C);
  for (size_t i = 0; i < image.size(); ++i) image[i] = std::sin(0.7f * static_cast<float>(i));
  ml::Graph g;
  ml::Tensor img = g.leaf(ml::DType::F32, {W, H, C, 1}, image.data());
  ml::Tensor y = patch.forward(img);  // [OW, OH, 4]
  ASSERT_EQ(y.shape(), (ml::Shape{3, 5, 4, 1}));
  // Channels first for the norm: [4, OW * OH].
  ml::Tensor z = ln.forward(ml::cont(ml::permute(ml::reshape(y, {15, 4}), 1, 0, 2, 3)));
  auto backend = backend::reference::make_backend();
  ml::Executor ex({backend.get()});
  ex.compute(g, {y, z});

  auto f = [&](const char* name) { return reinterpret_cast<const float*>(file.tensor(name).data); };
  const float *k = f("patch.weight"), *bias = f("patch.bias");
  std::vector<float> want(15 * 4);
  for (int co = 0; co < 4; ++co) {
    for (int oy = 0; oy < 5; ++oy) {
      for (int ox = 0; ox < 3; ++ox) {
        double acc = bias[co];
        for (int ci = 0; ci < C; ++ci) {
          for (int ky = 0; ky < 3; ++ky) {
            for (int kx = 0; kx < 3; ++kx) {
              const int ix = ox * 2 + kx - 1, iy = oy + ky - 1;
              if (ix < 0 || ix >= W || iy < 0 || iy >= H) continue;
              acc += k[((co * C + ci) * 3 + ky) * 3 + kx] * image[(ci * H + iy) * W + ix];
            }
          }
        }
        want[co * 15 + oy * 3 + ox] = static_cast<float>(acc);
        EXPECT_NEAR(static_cast<const float*>(y.data())[co * 15 + oy * 3 + ox], acc, 1e-5);
      }
    }
  }
  const float *lw = f("ln.weight"), *lb = f("ln.bias");
  for (int p = 0; p < 15; ++p) {
    double mean = 0, var = 0;
    for (int c = 0; c < 4; ++c) mean += want[c * 15 + p] / 4.0;
    for (int c = 0; c < 4; ++c) var += (want[c * 15 + p] - mean) * (want[c * 15 + p] - mean) / 4.0;
    for (int c = 0; c < 4; ++c) {
      const double norm = (want[c * 15 + p] - mean) / std::sqrt(var + 1e-5) * lw[c] + lb[c];
      EXPECT_NEAR(static_cast<const float*>(z.data())[p * 4 + c], norm, 1e-4);
    }
  }
}

}  // namespace
}  // namespace corral::nn
