// Hand-computed checks of the reference kernels: the values every other backend is held to.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <vector>

#include "backend/reference/reference.h"
#include "ml/fp16.h"
#include "op_harness.h"

namespace corral::backend::reference {
namespace {

using ml::DType;
using ml::Graph;
using ml::Tensor;
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<float> compute(Graph& g, Tensor out) {
  auto ref = make_backend();
  ml::Executor ex({ref.get()});
  ex.compute(g, {out});
  return corral::testing::read_as_f32(out.node());
}

void expect_near(const std::vector<float>& got, const std::vector<double>& want, double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i]) continue;  // also equal infinities, which EXPECT_NEAR rejects
    EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
  }
}

// ---- rope ----

struct RopeRun {
  Graph g;
  std::vector<float> x;
  std::vector<int32_t> pos;
  std::vector<float> ff;
  std::vector<float> run(int64_t head_dim, const ml::op::Rope& p) {
    Tensor xt =
        g.leaf(DType::F32, {head_dim, 1, static_cast<int64_t>(x.size() / head_dim)}, x.data());
    Tensor pt = g.leaf(DType::I32, {static_cast<int64_t>(pos.size())}, pos.data());
    Tensor ft;
    if (!ff.empty()) ft = g.leaf(DType::F32, {static_cast<int64_t>(ff.size())}, ff.data());
    return compute(g, ml::rope(xt, pt, ft, p));
  }
};

ml::op::Rope rope_params(ml::op::RopeMode mode, int n_dims) {
  ml::op::Rope p;
  p.mode = mode;
  p.n_dims = n_dims;
  p.n_ctx_orig = 4096;
  return p;
}

TEST(ReferenceRope, NormalModeRotatesAdjacentPairs) {
  // Position 1, base 10000, 4 dims: pair 0 turns by 1 rad, pair 1 by 10000^(-1/2) = 0.01 rad.
  RopeRun r{.x = {1, 2, 3, 4}, .pos = {1}};
  const auto out = r.run(4, rope_params(ml::op::RopeMode::kNormal, 4));
  const double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
  expect_near(out, {1 * c1 - 2 * s1, 1 * s1 + 2 * c1, 3 * c2 - 4 * s2, 3 * s2 + 4 * c2}, 1e-6);
}

TEST(ReferenceRope, NeoxModeRotatesHalves) {
  // Pair 0 is (x0, x2), pair 1 is (x1, x3).
  RopeRun r{.x = {1, 2, 3, 4}, .pos = {1}};
  const auto out = r.run(4, rope_params(ml::op::RopeMode::kNeox, 4));
  const double c1 = std::cos(1.0), s1 = std::sin(1.0), c2 = std::cos(0.01), s2 = std::sin(0.01);
  expect_near(out, {1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 1 * s1 + 3 * c1, 2 * s2 + 4 * c2}, 1e-6);
}

TEST(ReferenceRope, DimensionsPastNDimsPassThroughAndEachTokenUsesItsPosition) {
  // head_dim 6, n_dims 2: only (x0, x1) turns, by the token's position (theta = pos).
  RopeRun r{.x = {1, 0, 5, 6, 7, 8, 1, 0, 5, 6, 7, 8}, .pos = {0, 2}};
  const auto out = r.run(6, rope_params(ml::op::RopeMode::kNormal, 2));
  expect_near(out, {1, 0, 5, 6, 7, 8, std::cos(2.0), std::sin(2.0), 5, 6, 7, 8}, 1e-6);
}

TEST(ReferenceRope, LinearScalingAndFreqFactorsDivideTheAngle) {
  // freq_scale 0.5 at position 4 turns like position 2; a factor of 4 on pair 1 divides its
  // angle 4 * 0.01 by 4 once more: 0.5 * 4 * 0.01 / 4 = 0.005.
  RopeRun r{.x = {1, 0, 1, 0}, .pos = {4}, .ff = {1.0f, 4.0f}};
  auto p = rope_params(ml::op::RopeMode::kNormal, 4);
  p.freq_scale = 0.5f;
  const auto out = r.run(4, p);
  expect_near(out, {std::cos(2.0), std::sin(2.0), std::cos(0.005), std::sin(0.005)}, 1e-6);
}

TEST(ReferenceRope, YarnRampsFromExtrapolationToInterpolationBetweenCorrectionDims) {
  // n_dims 8, n_ctx_orig 4096, base 10000, beta_fast 32, beta_slow 1. By hand:
  //   corr(32) = 8 ln(4096 / (2 pi 32)) / (2 ln 10000) = 1.309 -> floor 1
  //   corr(1)  = 8 ln(4096 / (2 pi))    / (2 ln 10000) = 2.814 -> ceil  3
  // so pair i mixes in extrapolation by 1 - clamp((i - 1) / 2, 0, 1): 1, 1, 0.5, 0. With
  // freq_scale 0.25 the angle is 0.25 t (1 - mix) + t mix for t = pos 10000^(-i/4), and the
  // magnitude is attn_factor (1 + 0.1 ln 4).
  RopeRun r{.x = {1, 0, 1, 0, 1, 0, 1, 0}, .pos = {3}};
  auto p = rope_params(ml::op::RopeMode::kNormal, 8);
  p.freq_scale = 0.25f;
  p.ext_factor = 1.0f;
  p.attn_factor = 0.5f;
  const auto out = r.run(8, p);
  const double mix[4] = {1, 1, 0.5, 0};
  const double mscale = 0.5 * (1 + 0.1 * std::log(4.0));
  std::vector<double> want;
  for (int i = 0; i < 4; ++i) {
    const double t = 3 * std::pow(10000.0, -i / 4.0);
    const double theta = 0.25 * t * (1 - mix[i]) + t * mix[i];
    want.push_back(std::cos(theta) * mscale);
    want.push_back(std::sin(theta) * mscale);
  }
  expect_near(out, want, 1e-6);
}

TEST(ReferenceRope, WithoutExtFactorAttnFactorScalesAndNoYarnMagnitudeIsAdded) {
  RopeRun r{.x = {1, 0}, .pos = {3}};
  auto p = rope_params(ml::op::RopeMode::kNormal, 2);
  p.freq_scale = 0.25f;
  p.attn_factor = 2.0f;
  const auto out = r.run(2, p);
  expect_near(out, {2 * std::cos(0.75), 2 * std::sin(0.75)}, 1e-6);
}

TEST(ReferenceRope, MRopeGivesEachSectionItsOwnPosition) {
  // sections {1, 1, 2}: pair 0 uses t = 1, pair 1 h = 2, pairs 2-3 w = 3, on one continuing
  // frequency ladder (base 10000, 8 dims: 10^(-i)); NeoX pairs (x[i], x[i + 4]).
  RopeRun r{.x = {1, 1, 1, 1, 0, 0, 0, 0}, .pos = {1, 2, 3, 0}};
  auto p = rope_params(ml::op::RopeMode::kMRope, 8);
  p.sections = {1, 1, 2, 0};
  const auto out = r.run(8, p);
  const double theta[4] = {1.0, 0.2, 0.03, 0.003};
  std::vector<double> want(8);
  for (int i = 0; i < 4; ++i) {
    want[i] = std::cos(theta[i]);
    want[i + 4] = std::sin(theta[i]);
  }
  expect_near(out, want, 1e-6);
}

TEST(ReferenceRope, VisionRestartsTheLadderInEachSectionAndRotatesAcrossTheWholeHead) {
  // head_dim 8, n_dims 4, sections {2, 2}: pairs 0-1 use t = 5 (5, 5 * 0.01), pairs 2-3 restart
  // with h = 7 (7, 7 * 0.01); pair i rotates (x[i], x[i + 4]).
  RopeRun r{.x = {1, 1, 1, 1, 0, 0, 0, 0}, .pos = {5, 7, 0, 0}};
  auto p = rope_params(ml::op::RopeMode::kVision, 4);
  p.sections = {2, 2, 0, 0};
  const auto out = r.run(8, p);
  const double theta[4] = {5.0, 0.05, 7.0, 0.07};
  std::vector<double> want(8);
  for (int i = 0; i < 4; ++i) {
    want[i] = std::cos(theta[i]);
    want[i + 4] = std::sin(theta[i]);
  }
  expect_near(out, want, 1e-5);
}

// ---- softmax ----

TEST(ReferenceSoftmax, MaskedEntriesGetZeroAndTheMaskRowFollowsTheQuery) {
  Graph g;
  std::vector<float> x = {1, 2, 3, 1, 2, 3};
  std::vector<float> mask = {0, -kInf, 0, 0, 0, -kInf};
  Tensor xt = g.leaf(DType::F32, {3, 2}, x.data());
  Tensor mt = g.leaf(DType::F32, {3, 2}, mask.data());
  const auto out = compute(g, ml::softmax(xt, mt, 1.0f));
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0);
  expect_near(out, {e1 / (e1 + e3), 0, e3 / (e1 + e3), e1 / (e1 + e2), e2 / (e1 + e2), 0}, 1e-6);
}

TEST(ReferenceSoftmax, ScaleAppliesBeforeTheMaskAndF16MasksBroadcastOverHeads) {
  Graph g;
  std::vector<float> x = {2, 4, 2, 4};  // two heads of one row
  std::vector<uint16_t> mask = {ml::fp32_to_fp16(0.0f), ml::fp32_to_fp16(1.0f)};
  Tensor xt = g.leaf(DType::F32, {2, 1, 2}, x.data());
  Tensor mt = g.leaf(DType::F16, {2, 1}, mask.data());
  const auto out = compute(g, ml::softmax(xt, mt, 0.5f));
  // logits 1 and 3: p = 1 / (1 + e^2).
  const double p0 = 1 / (1 + std::exp(2.0));
  expect_near(out, {p0, 1 - p0, p0, 1 - p0}, 1e-6);
}

TEST(ReferenceSoftmax, FullyMaskedRowIsZeros) {
  Graph g;
  std::vector<float> x = {1, 2};
  std::vector<float> mask = {-kInf, -kInf};
  Tensor xt = g.leaf(DType::F32, {2, 1}, x.data());
  const auto out = compute(g, ml::softmax(xt, g.leaf(DType::F32, {2, 1}, mask.data())));
  expect_near(out, {0, 0}, 0);
}

// ---- attention ----

TEST(ReferenceFlashAttn, EqualsSoftmaxOfQKtTimesVWithGqaCausalAndMask) {
  const int64_t d = 4, n_tokens = 3, n_head = 4, n_head_kv = 2, n_kv = 5;
  std::vector<float> q(d * n_tokens * n_head), k(d * n_kv * n_head_kv), v(k.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.7 * i + 0.3);
  for (size_t i = 0; i < k.size(); ++i) k[i] = std::cos(1.3 * i);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(0.37 * i) * 2;
  std::vector<uint16_t> k16(k.size()), v16(v.size());
  for (size_t i = 0; i < k.size(); ++i) {
    k16[i] = ml::fp32_to_fp16(k[i]);
    k[i] = ml::fp16_to_fp32(k16[i]);
    v16[i] = ml::fp32_to_fp16(v[i]);
    v[i] = ml::fp16_to_fp32(v16[i]);
  }
  std::vector<float> mask(n_kv * n_tokens, 0.0f);
  mask[1 + n_kv * 0] = -kInf;  // token 0 may not see key 1
  mask[3 + n_kv * 2] = -0.5f;  // token 2 sees key 3 damped
  const float scale = 0.5f;

  Graph g;
  Tensor qt = g.leaf(DType::F32, {d, n_tokens, n_head}, q.data());
  Tensor kt = g.leaf(DType::F16, {d, n_kv, n_head_kv}, k16.data());
  Tensor vt = g.leaf(DType::F16, {d, n_kv, n_head_kv}, v16.data());
  Tensor mt = g.leaf(DType::F32, {n_kv, n_tokens}, mask.data());
  Tensor out = ml::flash_attn(qt, kt, vt, mt, scale, true);
  ASSERT_EQ(out.shape(), (ml::Shape{d, n_head, n_tokens, 1}));
  const auto got = compute(g, out);

  // softmax(scale Q K^T + mask + causal) V, per head, written [d, n_head, n_tokens].
  std::vector<double> want(got.size());
  for (int64_t h = 0; h < n_head; ++h) {
    const int64_t hk = h / (n_head / n_head_kv);
    for (int64_t t = 0; t < n_tokens; ++t) {
      std::vector<double> p(n_kv);
      double sum = 0;
      for (int64_t j = 0; j < n_kv; ++j) {
        double s = 0;
        for (int64_t e = 0; e < d; ++e)
          s += q[e + d * (t + n_tokens * h)] * k[e + d * (j + n_kv * hk)];
        s = s * scale + mask[j + n_kv * t];
        const bool visible = j <= n_kv - n_tokens + t;
        p[j] = visible ? std::exp(s) : 0.0;
        sum += p[j];
      }
      for (int64_t e = 0; e < d; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < n_kv; ++j) acc += p[j] / sum * v[e + d * (j + n_kv * hk)];
        want[e + d * (h + n_head * t)] = acc;
      }
    }
  }
  expect_near(got, want, 1e-5);
}

// ---- convolution ----

struct ConvRun {
  Graph g;
  // 3x3 image 1..9 (x fastest) and 2x2 kernel k[kw + 2 kh] = 1, 2, 3, 4.
  std::vector<float> image = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<float> kernel = {1, 2, 3, 4};
  Tensor kt() { return g.leaf(DType::F32, {2, 2, 1, 1}, kernel.data()); }
  Tensor it() { return g.leaf(DType::F32, {3, 3, 1, 1}, image.data()); }
};

TEST(ReferenceConv2d, ThreeByThreeImageWithoutPadding) {
  // out[0,0] = 1*1 + 2*2 + 3*4 + 4*5 = 37, then 47, 67, 77.
  ConvRun r;
  Tensor out = ml::conv2d(r.kt(), r.it(), ml::op::Conv2D{});
  ASSERT_EQ(out.shape(), (ml::Shape{2, 2, 1, 1}));
  expect_near(compute(r.g, out), {37, 47, 67, 77}, 0);
}

TEST(ReferenceConv2d, ThreeByThreeImageWithPaddingAndStride) {
  // Stride 2, padding 1: out[0,0] sees only image[0,0] under k[1,1] = 4; out[1,0] = 3*2 + 4*3;
  // out[0,1] = 2*4 + 4*7; out[1,1] = 1*5 + 2*6 + 3*8 + 4*9.
  ConvRun r;
  Tensor out = ml::conv2d(r.kt(), r.it(), ml::op::Conv2D{2, 2, 1, 1, 1, 1});
  ASSERT_EQ(out.shape(), (ml::Shape{2, 2, 1, 1}));
  expect_near(compute(r.g, out), {4, 18, 36, 77}, 0);
}

TEST(ReferenceIm2Col, ColumnsAreKwFastestThenKhThenChannel) {
  ConvRun r;
  Tensor out = ml::im2col(r.kt(), r.it(), ml::op::Im2Col{});
  ASSERT_EQ(out.shape(), (ml::Shape{4, 2, 2, 1}));
  expect_near(compute(r.g, out), {1, 2, 4, 5, 2, 3, 5, 6, 4, 5, 7, 8, 5, 6, 8, 9}, 0);
}

TEST(ReferenceConv2d, EqualsMulMatOfKernelAndIm2Col) {
  const int64_t kw = 3, kh = 3, cin = 2, cout = 4, w = 6, h = 5, n = 2;
  std::vector<float> kernel(kw * kh * cin * cout), image(w * h * cin * n);
  for (size_t i = 0; i < kernel.size(); ++i) kernel[i] = std::sin(0.9 * i);
  for (size_t i = 0; i < image.size(); ++i) image[i] = std::cos(0.31 * i);
  Graph g;
  Tensor kt = g.leaf(DType::F32, {kw, kh, cin, cout}, kernel.data());
  Tensor it = g.leaf(DType::F32, {w, h, cin, n}, image.data());
  const ml::op::Conv2D p{2, 1, 1, 2, 1, 1};
  Tensor direct = ml::conv2d(kt, it, p);
  Tensor cols = ml::im2col(kt, it, ml::op::Im2Col{2, 1, 1, 2, 1, 1});  // [18, ow, oh, n]
  const int64_t ow = cols.ne(1), oh = cols.ne(2);
  Tensor mm = ml::mul_mat(ml::reshape(kt, {kw * kh * cin, cout}),
                          ml::reshape(cols, {kw * kh * cin, ow * oh * n}));  // [cout, ow*oh*n]
  Tensor via = ml::cont(ml::permute(ml::reshape(mm, {cout, ow, oh, n}), 2, 0, 1, 3));
  auto ref = make_backend();
  ml::Executor ex({ref.get()});
  ex.compute(g, {direct, via});
  const auto a = corral::testing::read_as_f32(direct.node());
  const auto b = corral::testing::read_as_f32(via.node());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;
}

// ---- normalization and activations ----

TEST(ReferenceNorm, LayerNormUsesTheBiasedVarianceThenWeightAndBias) {
  // mean 2.5, variance 1.25.
  Graph g;
  std::vector<float> x = {1, 2, 3, 4}, wt = {1, 2, 1, 2}, bias = {0, 0, 1, 1};
  Tensor out = ml::layer_norm(g.leaf(DType::F32, {4}, x.data()), g.leaf(DType::F32, {4}, wt.data()),
                              g.leaf(DType::F32, {4}, bias.data()), 0.0f);
  const double s = 1 / std::sqrt(1.25);
  expect_near(compute(g, out), {-1.5 * s, -0.5 * s * 2, 0.5 * s + 1, 1.5 * s * 2 + 1}, 1e-6);
}

TEST(ReferenceNorm, RmsNormDividesByRootMeanSquare) {
  // mean square 7.5, eps 0.5 -> divide by sqrt(8).
  Graph g;
  std::vector<float> x = {1, 2, 3, 4};
  const auto out = compute(g, ml::rms_norm(g.leaf(DType::F32, {4}, x.data()), 0.5f));
  const double s = 1 / std::sqrt(8.0);
  expect_near(out, {s, 2 * s, 3 * s, 4 * s}, 1e-6);
}

TEST(ReferenceActivations, GeluFormsSiluAndQuickGeluMatchTheirDefinitions) {
  // Values from PyTorch's definitions evaluated in double precision.
  std::vector<float> x = {1.0f, -2.0f, 0.5f, 3.0f};
  auto run = [&](auto op) {
    Graph g;
    return compute(g, op(g.leaf(DType::F32, {4}, x.data())));
  };
  expect_near(run([](Tensor a) { return ml::gelu(a, ml::op::GeluForm::kTanh); }),
              {0.841191991, -0.0454023059, 0.34571401, 2.99636261}, 1e-6);
  expect_near(run([](Tensor a) { return ml::gelu(a, ml::op::GeluForm::kErf); }),
              {0.841344746, -0.0455002639, 0.345731231, 2.99595031}, 1e-6);
  expect_near(run([](Tensor a) { return ml::gelu_quick(a); }),
              {0.845795766, -0.0643413769, 0.350388437, 2.98192869}, 1e-6);
  expect_near(run([](Tensor a) { return ml::silu(a); }),
              {0.731058579, -0.238405844, 0.311229666, 2.85772238}, 1e-6);
}

// ---- matrix products, broadcasting, data movement ----

TEST(ReferenceMulMat, ConsecutiveActivationHeadsShareAWeightHead) {
  // Two weight heads, four activation heads: heads 0,1 use weight 0; heads 2,3 use weight 1.
  Graph g;
  std::vector<float> w = {1, 0, 0, 1, 2, 3, 4, 5};  // [2, 2, 2]: head 0 identity
  std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};  // [2, 1, 4]
  Tensor out =
      ml::mul_mat(g.leaf(DType::F32, {2, 2, 2}, w.data()), g.leaf(DType::F32, {2, 1, 4}, x.data()));
  ASSERT_EQ(out.shape(), (ml::Shape{2, 1, 4, 1}));
  expect_near(compute(g, out),
              {1, 2, 3, 4, 2 * 5 + 3 * 6, 4 * 5 + 5 * 6, 2 * 7 + 3 * 8, 4 * 7 + 5 * 8}, 0);
}

TEST(ReferenceMulMat, ReadsTransposedActivationHeads) {
  // x stored [2, heads=2, tokens=1] viewed as [2, tokens=1, heads=2].
  Graph g;
  std::vector<float> w = {1, 1};
  std::vector<float> x = {1, 2, 10, 20};
  Tensor xt = ml::permute(g.leaf(DType::F32, {2, 2, 1}, x.data()), 0, 2, 1, 3);
  expect_near(compute(g, ml::mul_mat(g.leaf(DType::F32, {2, 1}, w.data()), xt)), {3, 30}, 0);
}

TEST(ReferenceBinary, SecondOperandRepeatsAlongEveryDimension) {
  Graph g;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};  // [3, 2]
  std::vector<float> b = {10, 20};            // [1, 2]: one value per row
  Tensor out = ml::div(g.leaf(DType::F32, {3, 2}, a.data()), g.leaf(DType::F32, {1, 2}, b.data()));
  expect_near(compute(g, out), {0.1, 0.2, 0.3, 0.2, 0.25, 0.3}, 1e-7);
}

TEST(ReferenceCopy, ContOfATransposeWritesTheTransposedOrder) {
  Graph g;
  std::vector<float> a = {1, 2, 3, 4, 5, 6};  // [3, 2]
  const auto out = compute(g, ml::cont(ml::transpose(g.leaf(DType::F32, {3, 2}, a.data()))));
  expect_near(out, {1, 4, 2, 5, 3, 6}, 0);
}

TEST(ReferenceCopy, CastToF16RoundsToNearestEven) {
  // 1 + 2^-11 lies halfway between two halves: ties go to the even one (1.0).
  Graph g;
  std::vector<float> a = {1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 70000.0f};
  const auto out = compute(g, ml::cast(g.leaf(DType::F32, {3}, a.data()), DType::F16));
  expect_near(out, {1.0, 1.0 + 4.0 / 2048, std::numeric_limits<double>::infinity()}, 0);
}

TEST(ReferenceRows, GetRowsGathersPerBatch) {
  Graph g;
  std::vector<float> table = {0, 1, 10, 11, 20, 21, 100, 101, 110, 111, 120, 121};  // [2, 3, 2]
  std::vector<int32_t> ids = {2, 0, 1, 1};                                          // [2, 2]
  Tensor out = ml::get_rows(g.leaf(DType::F32, {2, 3, 2}, table.data()),
                            g.leaf(DType::I32, {2, 2}, ids.data()));
  expect_near(compute(g, out), {20, 21, 0, 1, 110, 111, 110, 111}, 0);
}

TEST(ReferenceRows, SetRowsWritesAnF16DestinationInPlace) {
  Graph g;
  std::vector<uint16_t> dst(6, ml::fp32_to_fp16(-1.0f));  // [2, 3] f16
  std::vector<float> rows = {1.5f, 2.5f, 3.0f, 4.0f};     // [2, 2]
  std::vector<int64_t> ids = {2, 0};
  Tensor out =
      ml::set_rows(g.leaf(DType::F16, {2, 3}, dst.data()), g.leaf(DType::F32, {2, 2}, rows.data()),
                   g.leaf(DType::I64, {2}, ids.data()));
  expect_near(compute(g, out), {3, 4, -1, -1, 1.5, 2.5}, 0);
  EXPECT_EQ(ml::fp16_to_fp32(dst[4]), 1.5f);  // the leaf's own memory changed
}

TEST(ReferenceRows, ConcatJoinsAlongTheGivenDim) {
  Graph g;
  std::vector<float> a = {1, 2, 3, 4}, b = {5, 6};  // [2, 2] and [1, 2]
  Tensor out =
      ml::concat(g.leaf(DType::F32, {2, 2}, a.data()), g.leaf(DType::F32, {1, 2}, b.data()), 0);
  expect_near(compute(g, out), {1, 2, 5, 3, 4, 6}, 0);
}

TEST(ReferenceReductions, ArgmaxTakesTheFirstLargestAndSumsAndMeansUseWholeRows) {
  Graph g;
  std::vector<float> a = {1, 7, 7, 2, -1, -3, -2, -1};  // [4, 2]
  Tensor at = g.leaf(DType::F32, {4, 2}, a.data());
  Tensor am = ml::argmax(at), sum = ml::sum_rows(at), mean = ml::mean(at);
  auto ref = make_backend();
  ml::Executor ex({ref.get()});
  ex.compute(g, {am, sum, mean});
  expect_near(corral::testing::read_as_f32(am.node()), {1, 0}, 0);
  expect_near(corral::testing::read_as_f32(sum.node()), {17, -7}, 0);
  expect_near(corral::testing::read_as_f32(mean.node()), {4.25, -1.75}, 0);
}

}  // namespace
}  // namespace corral::backend::reference
