// CPU kernels (every op but mul_mat) against straightforward computations written here, on
// awkward row lengths, permuted (non-contiguous) inputs and broadcasts, with 1 and 2 threads.
// The SIMD row primitives are also compared with their scalar versions directly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

#include "backend/cpu/cpu.h"
#include "backend/cpu/kernels/convert.h"
#include "backend/cpu/kernels/vec.h"
#include "ml/backend.h"
#include "ml/fp16.h"
#include "ml/graph.h"
#include "ml/quant/blocks.h"
#include "ml/quant/quant.h"

namespace corral::backend::cpu {
namespace {

using ml::DType;
using ml::Graph;
using ml::Shape;
using ml::Tensor;

constexpr int64_t kLengths[] = {7, 8, 9, 31, 32, 33, 255, 257};
constexpr int kThreadCounts[] = {1, 2};

// Normalised mean squared error: sum (a - b)^2 / sum b^2.
double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? num / den : num;
}

class CpuOps : public ::testing::Test {
 protected:
  std::mt19937 rng_{1234};
  std::deque<std::vector<float>> f32_;
  std::deque<std::vector<uint16_t>> u16_;
  std::deque<std::vector<int32_t>> i32_;
  std::deque<std::vector<int64_t>> i64_;

  std::vector<float> random(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng_);
    return v;
  }
  // Brace-initialised shapes leave trailing dims 0; they mean 1 here.
  static Shape full(Shape s) {
    for (int64_t& d : s) d = d == 0 ? 1 : d;
    return s;
  }
  static int64_t count(const Shape& s) {
    const Shape f = full(s);
    return f[0] * f[1] * f[2] * f[3];
  }

  Tensor leaf(Graph& g, const Shape& s, std::vector<float> v) {
    f32_.push_back(std::move(v));
    return g.leaf(DType::F32, full(s), f32_.back().data());
  }
  Tensor leaf(Graph& g, const Shape& s) { return leaf(g, s, random(count(s))); }
  Tensor leaf_half(Graph& g, DType t, const Shape& s, const std::vector<float>& v) {
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      h[i] = t == DType::F16 ? ml::fp32_to_fp16(v[i]) : ml::fp32_to_bf16(v[i]);
    }
    u16_.push_back(std::move(h));
    return g.leaf(t, full(s), u16_.back().data());
  }
  Tensor leaf_i32(Graph& g, const Shape& s, std::vector<int32_t> v) {
    i32_.push_back(std::move(v));
    return g.leaf(DType::I32, full(s), i32_.back().data());
  }
  Tensor leaf_i64(Graph& g, const Shape& s, std::vector<int64_t> v) {
    i64_.push_back(std::move(v));
    return g.leaf(DType::I64, full(s), i64_.back().data());
  }
  const std::vector<float>& data_of(const Tensor& t) {
    for (auto& v : f32_) {
      if (v.data() == t.data()) return v;
    }
    ADD_FAILURE() << "not an f32 leaf";
    return f32_.front();
  }

  // Computes `out` on a CPU backend with `threads` threads; returns its bytes.
  static std::vector<char> run_bytes(Graph& g, Tensor out, int threads) {
    auto be = make_backend({.n_threads = threads});
    ml::Executor ex({be.get()});
    ex.compute(g, {out});
    const ml::Node& n = out.node();
    std::vector<char> bytes(n.nbytes());
    std::memcpy(bytes.data(), n.data, bytes.size());
    return bytes;
  }
  static std::vector<float> run(Graph& g, Tensor out, int threads) {
    EXPECT_TRUE(out.node().is_contiguous());
    const std::vector<char> b = run_bytes(g, out, threads);
    std::vector<float> f(b.size() / sizeof(float));
    std::memcpy(f.data(), b.data(), f.size() * sizeof(float));
    return f;
  }
  // Runs with 1 and 2 threads and checks both against `want`.
  void expect_near(Graph& g, Tensor out, const std::vector<float>& want, double tol,
                   const std::string& what) {
    for (int th : kThreadCounts) {
      const std::vector<float> got = run(g, out, th);
      const double e = nmse(got, want);
      EXPECT_LE(e, tol) << what << " with " << th << " thread(s)";
    }
  }
};

// Element (i0, i1, i2, i3) of a contiguous f32 buffer of shape s.
float at(const std::vector<float>& v, const Shape& s, int64_t i0, int64_t i1, int64_t i2,
         int64_t i3) {
  return v[((i3 * s[2] + i2) * s[1] + i1) * s[0] + i0];
}

// ---------------------------------------------------------------- SIMD primitives

TEST(CpuVec, Avx2PrimitivesMatchScalarOnAwkwardLengths) {
  const vec::Ops* fast = vec::avx2_ops();
  if (!fast) GTEST_SKIP() << "no AVX2 on this processor";
  const vec::Ops& ref = vec::scalar_ops();
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> d(-6.0f, 6.0f);
  for (int64_t n : kLengths) {
    std::vector<float> a(n), b(n), y1(n), y2(n);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = d(rng);
      b[i] = d(rng) + (d(rng) > 0 ? 7.0f : -7.0f);  // away from 0 for div
    }
    auto check2 = [&](auto f_fast, auto f_ref, const char* name, double tol) {
      f_fast(a.data(), b.data(), y1.data(), n);
      f_ref(a.data(), b.data(), y2.data(), n);
      EXPECT_LE(nmse(y1, y2), tol) << name << " n=" << n;
    };
    auto check1 = [&](auto f_fast, auto f_ref, const char* name, double tol) {
      f_fast(a.data(), y1.data(), n);
      f_ref(a.data(), y2.data(), n);
      EXPECT_LE(nmse(y1, y2), tol) << name << " n=" << n;
    };
    check2(fast->add, ref.add, "add", 0);
    check2(fast->sub, ref.sub, "sub", 0);
    check2(fast->mul, ref.mul, "mul", 0);
    check2(fast->div, ref.div, "div", 0);
    check2(fast->swiglu, ref.swiglu, "swiglu", 1e-12);
    check1(fast->silu, ref.silu, "silu", 1e-12);
    check1(fast->gelu_tanh, ref.gelu_tanh, "gelu_tanh", 1e-12);
    check1(fast->gelu_erf, ref.gelu_erf, "gelu_erf", 1e-12);
    check1(fast->gelu_quick, ref.gelu_quick, "gelu_quick", 1e-12);
    EXPECT_NEAR(fast->sum(a.data(), n), ref.sum(a.data(), n), 1e-4) << n;
    EXPECT_NEAR(fast->sum_squares(a.data(), n), ref.sum_squares(a.data(), n),
                1e-5 * ref.sum_squares(a.data(), n))
        << n;
    EXPECT_EQ(fast->max(a.data(), n), ref.max(a.data(), n)) << n;
    EXPECT_NEAR(fast->dot(a.data(), b.data(), n), ref.dot(a.data(), b.data(), n), 1e-3) << n;
    const float s1 = fast->exp_sum(a.data(), y1.data(), n, 6.0f);
    const float s2 = ref.exp_sum(a.data(), y2.data(), n, 6.0f);
    EXPECT_NEAR(s1, s2, 1e-6 * s2) << n;
    EXPECT_LE(nmse(y1, y2), 1e-13) << "exp n=" << n;

    std::vector<uint16_t> h1(n), h2(n);
    fast->f32_to_f16(a.data(), h1.data(), n);
    ref.f32_to_f16(a.data(), h2.data(), n);
    EXPECT_EQ(h1, h2) << "f32_to_f16 n=" << n;
    fast->f16_to_f32(h1.data(), y1.data(), n);
    ref.f16_to_f32(h1.data(), y2.data(), n);
    EXPECT_EQ(y1, y2) << "f16_to_f32 n=" << n;
    EXPECT_NEAR(fast->dot_f16(h1.data(), b.data(), n), ref.dot_f16(h1.data(), b.data(), n), 1e-3);
    y1 = b;
    y2 = b;
    fast->axpy_f16(0.75f, h1.data(), y1.data(), n);
    ref.axpy_f16(0.75f, h1.data(), y2.data(), n);
    EXPECT_LE(nmse(y1, y2), 1e-14);
    {
      // Tiles of 5 rows, 3 elements apart beyond the row (a padded stride).
      const int64_t rows = 5, stride = n + 3;
      std::vector<float> tile(rows * stride);
      std::vector<uint16_t> tile16(rows * stride);
      for (size_t i = 0; i < tile.size(); ++i) {
        tile[i] = d(rng);
        tile16[i] = ml::fp32_to_fp16(tile[i]);
      }
      float w[rows] = {0.5f, 0.0f, -1.25f, 2.0f, 0.125f};
      float o1[rows], o2[rows];
      fast->dot_rows(tile.data(), stride * 4, rows, a.data(), n, o1);
      ref.dot_rows(tile.data(), stride * 4, rows, a.data(), n, o2);
      for (int j = 0; j < rows; ++j) EXPECT_NEAR(o1[j], o2[j], 1e-4) << "dot_rows n=" << n;
      fast->dot_rows_f16(tile16.data(), stride * 2, rows, a.data(), n, o1);
      ref.dot_rows_f16(tile16.data(), stride * 2, rows, a.data(), n, o2);
      for (int j = 0; j < rows; ++j) EXPECT_NEAR(o1[j], o2[j], 1e-4) << "dot_rows_f16 n=" << n;
      y1 = b;
      y2 = b;
      fast->acc_rows(tile.data(), stride * 4, rows, w, n, y1.data());
      ref.acc_rows(tile.data(), stride * 4, rows, w, n, y2.data());
      EXPECT_LE(nmse(y1, y2), 1e-13) << "acc_rows n=" << n;
      y1 = b;
      y2 = b;
      fast->acc_rows_f16(tile16.data(), stride * 2, rows, w, n, y1.data());
      ref.acc_rows_f16(tile16.data(), stride * 2, rows, w, n, y2.data());
      EXPECT_LE(nmse(y1, y2), 1e-13) << "acc_rows_f16 n=" << n;
    }
    {
      // Longer tiles (several groups of 4 and 8 rows, small heads), one row of infinities under
      // a zero weight: it must not reach the sums.
      const int64_t rows = 19, stride = n + 1;
      std::vector<uint16_t> tile16(rows * stride);
      for (auto& h : tile16) h = ml::fp32_to_fp16(d(rng));
      for (int64_t i = 0; i < n; ++i) tile16[6 * stride + i] = 0x7C00;  // +inf
      std::vector<float> w(rows);
      for (auto& x : w) x = d(rng);
      w[6] = 0.0f;
      std::vector<float> o1(rows), o2(rows);
      fast->dot_rows_f16(tile16.data(), stride * 2, rows, a.data(), n, o1.data());
      ref.dot_rows_f16(tile16.data(), stride * 2, rows, a.data(), n, o2.data());
      for (int j = 0; j < rows; ++j) {
        if (j != 6) {
          EXPECT_NEAR(o1[j], o2[j], 1e-4) << "dot_rows_f16 19 rows n=" << n;
        }
      }
      y1 = b;
      y2 = b;
      fast->acc_rows_f16(tile16.data(), stride * 2, rows, w.data(), n, y1.data());
      ref.acc_rows_f16(tile16.data(), stride * 2, rows, w.data(), n, y2.data());
      EXPECT_LE(nmse(y1, y2), 1e-13) << "acc_rows_f16 19 rows n=" << n;
    }
    {
      // Rotations: n pairs over 2n values, with per-pair cos/sin.
      std::vector<float> x2(2 * n), r1(2 * n), r2(2 * n), c(n), sn(n);
      for (int64_t i = 0; i < n; ++i) {
        x2[i] = a[i];
        x2[n + i] = b[i];
        c[i] = std::cos(a[i]);
        sn[i] = std::sin(a[i]);
      }
      fast->rotate_pairs(x2.data(), r1.data(), c.data(), sn.data(), n);
      ref.rotate_pairs(x2.data(), r2.data(), c.data(), sn.data(), n);
      EXPECT_LE(nmse(r1, r2), 1e-13) << "rotate_pairs n=" << n;
      fast->rotate_halves(x2.data(), r1.data(), c.data(), sn.data(), n, n);
      ref.rotate_halves(x2.data(), r2.data(), c.data(), sn.data(), n, n);
      EXPECT_LE(nmse(r1, r2), 1e-13) << "rotate_halves n=" << n;
      fast->scale(a.data(), y1.data(), n, 0.3f, -2.0f);
      ref.scale(a.data(), y2.data(), n, 0.3f, -2.0f);
      EXPECT_LE(nmse(y1, y2), 1e-13) << "scale n=" << n;
      fast->axpy(0.3f, a.data(), y1.data(), n);
      ref.axpy(0.3f, a.data(), y2.data(), n);
      EXPECT_LE(nmse(y1, y2), 1e-13) << "axpy n=" << n;
    }
    fast->f32_to_bf16(a.data(), h1.data(), n);
    ref.f32_to_bf16(a.data(), h2.data(), n);
    EXPECT_EQ(h1, h2) << "f32_to_bf16 n=" << n;
    fast->bf16_to_f32(h1.data(), y1.data(), n);
    ref.bf16_to_f32(h1.data(), y2.data(), n);
    EXPECT_EQ(y1, y2) << "bf16_to_f32 n=" << n;
  }
}

TEST(CpuVec, Avx2Q8_0QuantizerRoundsHalvesAwayFromZeroLikeTheReference) {
  const vec::Ops* fast = vec::avx2_ops();
  if (!fast) GTEST_SKIP() << "no AVX2 on this processor";
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> d(-2.0f, 2.0f);
  std::vector<float> x(32 * 20);
  for (float& e : x) e = d(rng);
  // Block 0: amax 127 gives d = 1, so these are exact ties.
  for (int j = 0; j < 32; ++j) x[j] = (j % 2 ? -1.0f : 1.0f) * (0.5f + j);
  x[31] = 127.0f;
  for (int j = 32; j < 64; ++j) x[j] = 0.0f;  // an all-zero block
  std::vector<uint8_t> a(34 * 20), b(34 * 20);
  fast->quantize_q8_0(x.data(), a.data(), static_cast<int64_t>(x.size()));
  vec::scalar_ops().quantize_q8_0(x.data(), b.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(a, b);
  EXPECT_EQ(static_cast<int8_t>(a[2]), 1);   // 0.5 -> 1
  EXPECT_EQ(static_cast<int8_t>(a[3]), -2);  // -1.5 -> -2
}

TEST(CpuVec, ExpHandlesInfinitiesAndExtremes) {
  const vec::Ops& v = vec::ops();
  const float x[9] = {-INFINITY, -200.0f, -87.0f, -1.0f, 0.0f, 1.0f, 50.0f, 88.5f, 89.0f};
  float y[9];
  v.exp_sum(x, y, 9, 0.0f);
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_EQ(y[1], 0.0f);
  for (int i = 2; i < 8; ++i) EXPECT_NEAR(y[i], std::exp(x[i]), 2e-7 * std::exp(x[i])) << x[i];
  EXPECT_TRUE(std::isinf(y[8]));
}

// ---------------------------------------------------------------- element-wise

TEST_F(CpuOps, BinaryOpsBroadcastLikeRepetitionOnPermutedInputs) {
  for (int op = 0; op < 4; ++op) {
    for (int64_t n0 : kLengths) {
      Graph g;
      const Shape sa{n0, 3, 4, 2};
      // a is stored [3, n0, 4, 2] and permuted to [n0, 3, 4, 2]: rows are strided.
      Tensor store = leaf(g, {3, n0, 4, 2});
      Tensor a = ml::permute(store, 1, 0, 2, 3);
      const int64_t b0 = n0 % 3 == 0 ? n0 / 3 : n0;  // 9 -> 3, 33 -> 11, 255 -> 85: repeats
      const Shape sb{b0, 1, 4, 1};
      std::vector<float> bv = random(count(sb), 0.5f, 2.0f);
      Tensor b = leaf(g, sb, bv);
      Tensor out = op == 0   ? ml::add(a, b)
                   : op == 1 ? ml::sub(a, b)
                   : op == 2 ? ml::mul(a, b)
                             : ml::div(a, b);
      const std::vector<float>& av = data_of(store);
      std::vector<float> want(count(sa));
      for (int64_t i3 = 0; i3 < 2; ++i3)
        for (int64_t i2 = 0; i2 < 4; ++i2)
          for (int64_t i1 = 0; i1 < 3; ++i1)
            for (int64_t i0 = 0; i0 < n0; ++i0) {
              const float x = at(av, {3, n0, 4, 2}, i1, i0, i2, i3);
              const float w = at(bv, sb, i0 % b0, 0, i2, 0);
              want[((i3 * 4 + i2) * 3 + i1) * n0 + i0] = op == 0   ? x + w
                                                         : op == 1 ? x - w
                                                         : op == 2 ? x * w
                                                                   : x / w;
            }
      expect_near(g, out, want, 0, "binary op " + std::to_string(op) + " n0=" + std::to_string(n0));
    }
  }
}

TEST_F(CpuOps, ContiguousBinaryOpsBroadcastRowsAndMatrices) {
  Graph g;
  const Shape sa{33, 5, 2, 3};
  Tensor a = leaf(g, sa);
  Tensor b = leaf(g, {33, 5, 1, 1});
  Tensor out = ml::mul(a, b);
  std::vector<float> want(count(sa));
  const auto& av = data_of(a);
  const auto& bv = data_of(b);
  for (int64_t r = 0; r < 30; ++r)
    for (int64_t i = 0; i < 33; ++i) want[r * 33 + i] = av[r * 33 + i] * bv[(r % 5) * 33 + i];
  expect_near(g, out, want, 0, "mul");
}

TEST_F(CpuOps, BinaryOpsRepeatShortRowsAlongLongOnes) {
  for (int64_t b0 : {1, 3, 7, 32}) {
    Graph g;
    const Shape sa{b0 * 97, 3, 1, 1};
    Tensor a = leaf(g, sa);
    Tensor b = leaf(g, {b0, 3}, random(b0 * 3, 0.5f, 2.0f));
    const auto& av = data_of(a);
    const auto& bv = data_of(b);
    std::vector<float> sum, quo;
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t i = 0; i < sa[0]; ++i) {
        sum.push_back(av[r * sa[0] + i] + bv[r * b0 + i % b0]);
        quo.push_back(av[r * sa[0] + i] / bv[r * b0 + i % b0]);
      }
    expect_near(g, ml::add(a, b), sum, 0, "add b0=" + std::to_string(b0));
    expect_near(g, ml::div(a, b), quo, 0, "div b0=" + std::to_string(b0));
  }
}

TEST_F(CpuOps, ActivationsMatchTheirFormulas) {
  for (int64_t n0 : kLengths) {
    Graph g;
    const Shape s{n0, 3, 2, 1};
    Tensor x = leaf(g, s, random(count(s), -8.0f, 8.0f));
    Tensor y = leaf(g, s, random(count(s), -3.0f, 3.0f));
    const auto& xv = data_of(x);
    const auto& yv = data_of(y);
    std::vector<float> w_silu, w_tanh, w_erf, w_quick, w_swiglu, w_scale;
    for (size_t i = 0; i < xv.size(); ++i) {
      const double v = xv[i];
      w_silu.push_back(v / (1 + std::exp(-v)));
      w_tanh.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * v * (1 + 0.044715 * v * v))));
      w_erf.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
      w_quick.push_back(v / (1 + std::exp(-1.702 * v)));
      w_swiglu.push_back(v / (1 + std::exp(-v)) * yv[i]);
      w_scale.push_back(v * 0.37 - 1.5);
    }
    const std::string len = " n0=" + std::to_string(n0);
    expect_near(g, ml::silu(x), w_silu, 1e-12, "silu" + len);
    expect_near(g, ml::gelu(x), w_tanh, 1e-12, "gelu tanh" + len);
    expect_near(g, ml::gelu(x, ml::op::GeluForm::kErf), w_erf, 1e-12, "gelu erf" + len);
    expect_near(g, ml::gelu_quick(x), w_quick, 1e-12, "gelu_quick" + len);
    expect_near(g, ml::swiglu(x, y), w_swiglu, 1e-12, "swiglu" + len);
    expect_near(g, ml::scale(x, 0.37f, -1.5f), w_scale, 1e-13, "scale" + len);
  }
}

TEST_F(CpuOps, UnaryOpsReadTransposedInputs) {
  Graph g;
  Tensor store = leaf(g, {5, 33});
  Tensor x = ml::transpose(store);  // [33, 5], element stride 20 bytes
  std::vector<float> want;
  const auto& v = data_of(store);
  for (int64_t i1 = 0; i1 < 5; ++i1)
    for (int64_t i0 = 0; i0 < 33; ++i0) {
      const double e = v[i0 * 5 + i1];
      want.push_back(e / (1 + std::exp(-e)));
    }
  expect_near(g, ml::silu(x), want, 1e-12, "silu transposed");
}

// ---------------------------------------------------------------- norms and softmax

TEST_F(CpuOps, RmsNormNormalisesEachRowIncludingStridedOnes) {
  for (int64_t n0 : kLengths) {
    Graph g;
    Tensor store = leaf(g, {4, n0, 3, 1});
    Tensor x = ml::permute(store, 1, 0, 2, 3);  // [n0, 4, 3]
    const auto& v = data_of(store);
    std::vector<float> want;
    for (int64_t i2 = 0; i2 < 3; ++i2)
      for (int64_t i1 = 0; i1 < 4; ++i1) {
        double ss = 0;
        for (int64_t i0 = 0; i0 < n0; ++i0) ss += std::pow(at(v, {4, n0, 3, 1}, i1, i0, i2, 0), 2);
        const double sc = 1 / std::sqrt(ss / n0 + 1e-5);
        for (int64_t i0 = 0; i0 < n0; ++i0)
          want.push_back(at(v, {4, n0, 3, 1}, i1, i0, i2, 0) * sc);
      }
    expect_near(g, ml::rms_norm(x, 1e-5f), want, 1e-12, "rms_norm n0=" + std::to_string(n0));
  }
}

TEST_F(CpuOps, LayerNormWithAndWithoutWeightAndBias) {
  for (int64_t n0 : kLengths) {
    Graph g;
    const Shape s{n0, 6, 1, 1};
    Tensor x = leaf(g, s, random(count(s), 3.0f, 5.0f));  // a large mean
    Tensor w = leaf(g, {n0});
    Tensor b = leaf(g, {n0});
    const auto& xv = data_of(x);
    const auto& wv = data_of(w);
    const auto& bv = data_of(b);
    for (int variant = 0; variant < 3; ++variant) {
      std::vector<float> want;
      for (int64_t r = 0; r < 6; ++r) {
        double mean = 0, var = 0;
        for (int64_t i = 0; i < n0; ++i) mean += xv[r * n0 + i];
        mean /= n0;
        for (int64_t i = 0; i < n0; ++i) var += std::pow(xv[r * n0 + i] - mean, 2);
        var /= n0;
        for (int64_t i = 0; i < n0; ++i) {
          double y = (xv[r * n0 + i] - mean) / std::sqrt(var + 1e-5);
          if (variant >= 1) y *= wv[i];
          if (variant == 2) y += bv[i];
          want.push_back(y);
        }
      }
      Tensor out =
          ml::layer_norm(x, variant >= 1 ? w : Tensor{}, variant == 2 ? b : Tensor{}, 1e-5f);
      expect_near(g, out, want, 1e-11, "layer_norm n0=" + std::to_string(n0));
    }
  }
}

TEST_F(CpuOps, SoftmaxWithScaleAndF32OrF16MaskBroadcastOverHeads) {
  for (int64_t n0 : kLengths) {
    for (DType mt : {DType::F32, DType::F16}) {
      Graph g;
      const Shape s{n0, 5, 3, 1};
      Tensor x = leaf(g, s, random(count(s), -4.0f, 4.0f));
      // Mask [n0, 7] (more rows than needed), causal-looking with -inf.
      std::vector<float> mv(n0 * 7);
      for (int64_t r = 0; r < 7; ++r)
        for (int64_t i = 0; i < n0; ++i) mv[r * n0 + i] = i > r + n0 / 2 ? -INFINITY : 0.25f * r;
      Tensor m = mt == DType::F32 ? leaf(g, {n0, 7}, mv) : leaf_half(g, DType::F16, {n0, 7}, mv);
      const auto& xv = data_of(x);
      std::vector<float> want;
      for (int64_t i2 = 0; i2 < 3; ++i2)
        for (int64_t i1 = 0; i1 < 5; ++i1) {
          std::vector<double> z(n0);
          double mx = -INFINITY, sum = 0;
          for (int64_t i = 0; i < n0; ++i) {
            z[i] = xv[(i2 * 5 + i1) * n0 + i] * 0.7 + mv[i1 * n0 + i];
            mx = std::max(mx, z[i]);
          }
          for (double& e : z) sum += (e = std::exp(e - mx));
          for (double e : z) want.push_back(e / sum);
        }
      expect_near(g, ml::softmax(x, m, 0.7f), want, 1e-12,
                  "softmax n0=" + std::to_string(n0) + " mask " + std::string(ml::dtype_name(mt)));
      if (mt == DType::F32) {
        // And without a mask.
        std::vector<float> want2;
        for (int64_t r = 0; r < 15; ++r) {
          double mx = -INFINITY, sum = 0;
          for (int64_t i = 0; i < n0; ++i) mx = std::max<double>(mx, xv[r * n0 + i]);
          for (int64_t i = 0; i < n0; ++i) sum += std::exp(xv[r * n0 + i] - mx);
          for (int64_t i = 0; i < n0; ++i) want2.push_back(std::exp(xv[r * n0 + i] - mx) / sum);
        }
        expect_near(g, ml::softmax(x), want2, 1e-12, "softmax no mask");
      }
    }
  }
}

// ---------------------------------------------------------------- rope

// ggml's rope written out literally: angle theta_k = p * base^(-2k/n_dims) by repeated float
// multiplication, YaRN ramp and magnitude, M-RoPE sectors, and the pairings of each mode.
std::vector<float> naive_rope(const std::vector<float>& x, const Shape& s,
                              const std::vector<int32_t>& pos, const float* ff,
                              const ml::op::Rope& p) {
  using ml::op::RopeMode;
  std::vector<float> y = x;
  const int64_t ne0 = s[0], n_head = s[1], n_tok = s[2];
  const float theta_scale = std::pow(p.freq_base, -2.0f / p.n_dims);
  auto corr = [&](float n_rot) {
    return p.n_dims * std::log(p.n_ctx_orig / (n_rot * 2 * static_cast<float>(M_PI))) /
           (2 * std::log(p.freq_base));
  };
  const float lo = std::max(0.0f, std::floor(corr(p.beta_fast)));
  const float hi = std::min(static_cast<float>(p.n_dims - 1), std::ceil(corr(p.beta_slow)));
  const bool multi = p.mode == RopeMode::kMRope || p.mode == RopeMode::kVision;
  const bool vision = p.mode == RopeMode::kVision;
  const int n_pairs = vision ? ne0 / 2 : p.n_dims / 2;
  for (int64_t t = 0; t < n_tok; ++t) {
    std::vector<float> cs(n_pairs), sn(n_pairs);
    float th[4];
    for (int j = 0; j < 4; ++j) th[j] = static_cast<float>(pos[multi ? t + j * n_tok : t]);
    const int* sec = p.sections.data();
    const int sect_dims = sec[0] + sec[1] + sec[2] + sec[3];
    for (int k = 0; k < n_pairs; ++k) {
      float theta = th[0];
      if (multi) {
        const int sector = k % sect_dims;
        if (vision) {
          if (sector == 0) th[0] = static_cast<float>(pos[t]);
          if (sector == sec[0]) th[1] = static_cast<float>(pos[t + n_tok]);
          if (sector == sec[0] + sec[1]) th[2] = static_cast<float>(pos[t + 2 * n_tok]);
          if (sector == sec[0] + sec[1] + sec[2]) th[3] = static_cast<float>(pos[t + 3 * n_tok]);
        }
        if (sector < sec[0]) {
          theta = th[0];
        } else if (sector < sec[0] + sec[1]) {
          theta = th[1];
        } else if (sector < sec[0] + sec[1] + sec[2]) {
          theta = th[2];
        } else {
          theta = th[3];
        }
      }
      const float extrap = theta / (ff && k < p.n_dims / 2 ? ff[k] : 1.0f);
      const float interp = p.freq_scale * extrap;
      float angle = interp, mscale = p.attn_factor;
      if (p.ext_factor != 0) {
        const float yv = (k - lo) / std::max(0.001f, hi - lo);
        const float ramp = (1 - std::min(1.0f, std::max(0.0f, yv))) * p.ext_factor;
        angle = interp * (1 - ramp) + extrap * ramp;
        mscale *= 1.0f + 0.1f * std::log(1.0f / p.freq_scale);
      }
      cs[k] = std::cos(angle) * mscale;
      sn[k] = std::sin(angle) * mscale;
      for (float& v : th) v *= theta_scale;
    }
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t o = (t * n_head + h) * ne0;
      for (int k = 0; k < n_pairs; ++k) {
        int64_t i0, i1;
        if (p.mode == RopeMode::kNormal) {
          i0 = 2 * k, i1 = 2 * k + 1;
        } else if (vision) {
          i0 = k, i1 = k + ne0 / 2;
        } else {
          i0 = k, i1 = k + p.n_dims / 2;
        }
        y[o + i0] = x[o + i0] * cs[k] - x[o + i1] * sn[k];
        y[o + i1] = x[o + i0] * sn[k] + x[o + i1] * cs[k];
      }
    }
  }
  return y;
}

TEST_F(CpuOps, RopeMatchesGgmlSemanticsInEveryMode) {
  using ml::op::RopeMode;
  struct Case {
    const char* name;
    RopeMode mode;
    int64_t head_dim;
    int n_dims;
    bool ff;
    float ext_factor, freq_scale;
    std::array<int32_t, 4> sections;
  };
  const Case cases[] = {
      {"normal", RopeMode::kNormal, 64, 64, false, 0, 1, {}},
      {"normal partial", RopeMode::kNormal, 66, 32, false, 0, 1, {}},
      {"neox", RopeMode::kNeox, 64, 64, false, 0, 1, {}},
      {"neox partial + freq factors", RopeMode::kNeox, 80, 48, true, 0, 1, {}},
      {"normal linear scaling", RopeMode::kNormal, 32, 32, false, 0, 0.25f, {}},
      {"neox yarn", RopeMode::kNeox, 64, 64, false, 1.0f, 0.25f, {}},
      {"normal yarn + freq factors", RopeMode::kNormal, 128, 128, true, 0.5f, 0.125f, {}},
      {"mrope", RopeMode::kMRope, 128, 128, false, 0, 1, {16, 24, 24, 0}},
      {"vision", RopeMode::kVision, 64, 32, false, 0, 1, {8, 8, 0, 0}},
      // More pairs than the kernel caches at once (256): angles come in pieces.
      {"neox long head", RopeMode::kNeox, 600, 600, true, 0.5f, 0.5f, {}},
      {"normal long head", RopeMode::kNormal, 530, 520, false, 0, 1, {}},
  };
  for (const Case& c : cases) {
    Graph g;
    const int64_t n_head = 3, n_tok = 5;
    const Shape s{c.head_dim, n_head, n_tok, 1};
    Tensor x = leaf(g, s);
    const bool multi = c.mode == RopeMode::kMRope || c.mode == RopeMode::kVision;
    std::vector<int32_t> pos(n_tok * (multi ? 4 : 1));
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i * 37 % 501);
    Tensor positions = leaf_i32(g, {static_cast<int64_t>(pos.size())}, pos);
    Tensor ff;
    std::vector<float> ffv;
    if (c.ff) {
      ffv = random(c.n_dims / 2, 1.0f, 8.0f);
      ff = leaf(g, {c.n_dims / 2}, ffv);
    }
    ml::op::Rope p;
    p.mode = c.mode;
    p.n_dims = c.n_dims;
    p.n_ctx_orig = 4096;
    p.freq_base = 10000.0f;
    p.freq_scale = c.freq_scale;
    p.ext_factor = c.ext_factor;
    p.attn_factor = 1.0f;
    p.sections = c.sections;
    const std::vector<float> want = naive_rope(data_of(x), s, pos, c.ff ? ffv.data() : nullptr, p);
    expect_near(g, ml::rope(x, positions, ff, p), want, 1e-12, c.name);
  }
}

TEST_F(CpuOps, RopeReadsAPermutedInput) {
  Graph g;
  // Stored [head_dim, n_tok, n_head], permuted to [head_dim, n_head, n_tok].
  Tensor store = leaf(g, {32, 4, 2, 1});
  Tensor x = ml::permute(store, 0, 2, 1, 3);
  std::vector<int32_t> pos = {3, 9, 27, 81};
  Tensor positions = leaf_i32(g, {4}, pos);
  ml::op::Rope p;
  p.mode = ml::op::RopeMode::kNeox;
  p.n_dims = 32;
  std::vector<float> xc;  // contiguous copy in [32, 2, 4] order
  const auto& v = data_of(store);
  for (int t = 0; t < 4; ++t)
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 32; ++i) xc.push_back(v[(h * 4 + t) * 32 + i]);
  const auto want = naive_rope(xc, {32, 2, 4, 1}, pos, nullptr, p);
  expect_near(g, ml::rope(x, positions, {}, p), want, 1e-12, "rope permuted");
}

// ---------------------------------------------------------------- attention

TEST_F(CpuOps, FlashAttnMatchesSoftmaxOfScoresTimesV) {
  struct Case {
    int64_t d, dv, n_kv, n_tok, n_head, n_head_kv;
    DType kv;
    bool causal, mask;
    DType mask_t;
    bool strided = false;
  };
  const Case cases[] = {
      {64, 64, 300, 1, 4, 2, DType::F32, false, false, DType::F32},
      {64, 64, 300, 7, 4, 1, DType::F16, true, false, DType::F32},
      {33, 17, 129, 5, 6, 3, DType::F32, true, true, DType::F16},
      {128, 128, 257, 3, 2, 2, DType::F16, false, true, DType::F32},
      {64, 40, 200, 2, 8, 2, DType::F32, true, true, DType::F32, true},
      {32, 32, 150, 3, 4, 4, DType::F16, false, false, DType::F32, true},
      // Prefill: blocks of query tokens share each tile (19 and 33 are not whole blocks).
      {64, 64, 40, 19, 4, 2, DType::F16, true, true, DType::F32},
      {32, 48, 170, 33, 2, 1, DType::F32, true, false, DType::F32},
      {16, 16, 300, 24, 2, 2, DType::F32, false, true, DType::F16, true},
  };
  for (const Case& c : cases) {
    Graph g;
    const int64_t b3 = 2;
    const Shape sq{c.d, c.n_tok, c.n_head, b3}, sk{c.d, c.n_kv, c.n_head_kv, b3},
        sv{c.dv, c.n_kv, c.n_head_kv, b3};
    Tensor q = leaf(g, sq);
    std::vector<float> kv = random(count(sk)), vv = random(count(sv));
    if (c.kv == DType::F16) {  // the reference sees the same rounded values
      for (float& e : kv) e = ml::fp16_to_fp32(ml::fp32_to_fp16(e));
      for (float& e : vv) e = ml::fp16_to_fp32(ml::fp32_to_fp16(e));
    }
    Tensor k = c.kv == DType::F32 ? leaf(g, sk, kv) : leaf_half(g, DType::F16, sk, kv);
    Tensor v = c.kv == DType::F32 ? leaf(g, sv, vv) : leaf_half(g, DType::F16, sv, vv);
    if (c.strided) {
      // K and V stored transposed ([n_kv, d, ...]) and viewed back: element stride is a row.
      std::vector<float> kt(kv.size()), vtr(vv.size());
      for (int64_t r = 0; r < sk[2] * sk[3]; ++r)
        for (int64_t j = 0; j < c.n_kv; ++j) {
          for (int64_t i = 0; i < c.d; ++i)
            kt[(r * c.d + i) * c.n_kv + j] = kv[(r * c.n_kv + j) * c.d + i];
          for (int64_t i = 0; i < c.dv; ++i)
            vtr[(r * c.dv + i) * c.n_kv + j] = vv[(r * c.n_kv + j) * c.dv + i];
        }
      const Shape skt{c.n_kv, c.d, c.n_head_kv, b3}, svt{c.n_kv, c.dv, c.n_head_kv, b3};
      k = ml::transpose(c.kv == DType::F32 ? leaf(g, skt, kt) : leaf_half(g, c.kv, skt, kt));
      v = ml::transpose(c.kv == DType::F32 ? leaf(g, svt, vtr) : leaf_half(g, c.kv, svt, vtr));
    }
    std::vector<float> mv(c.n_kv * (c.n_tok + 2));
    for (size_t i = 0; i < mv.size(); ++i) mv[i] = i % 11 == 3 ? -INFINITY : (i % 5) * 0.1f;
    Tensor m;
    if (c.mask) {
      const Shape sm{c.n_kv, c.n_tok + 2, 1, 1};
      m = c.mask_t == DType::F32 ? leaf(g, sm, mv) : leaf_half(g, DType::F16, sm, mv);
      if (c.mask_t == DType::F16)
        for (float& e : mv) e = ml::fp16_to_fp32(ml::fp32_to_fp16(e));
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    Tensor out = ml::flash_attn(q, k, v, m, scale, c.causal);
    const auto& qv = data_of(q);
    std::vector<float> want(c.dv * c.n_head * c.n_tok * b3);
    for (int64_t b = 0; b < b3; ++b)
      for (int64_t t = 0; t < c.n_tok; ++t)
        for (int64_t h = 0; h < c.n_head; ++h) {
          const int64_t hk = h / (c.n_head / c.n_head_kv);
          std::vector<double> s(c.n_kv, -INFINITY);
          double mx = -INFINITY;
          for (int64_t j = 0; j < c.n_kv; ++j) {
            if (c.causal && j > c.n_kv - c.n_tok + t) continue;
            double dot = 0;
            for (int64_t i = 0; i < c.d; ++i) {
              dot += static_cast<double>(at(qv, sq, i, t, h, b)) * at(kv, sk, i, j, hk, b);
            }
            s[j] = dot * scale + (c.mask ? mv[t * c.n_kv + j] : 0.0f);
            mx = std::max(mx, s[j]);
          }
          double sum = 0;
          for (double& e : s) sum += (e = std::exp(e - mx));
          for (int64_t i = 0; i < c.dv; ++i) {
            double o = 0;
            for (int64_t j = 0; j < c.n_kv; ++j) o += s[j] * at(vv, sv, i, j, hk, b);
            want[((b * c.n_tok + t) * c.n_head + h) * c.dv + i] = o / sum;
          }
        }
    expect_near(g, out, want, 1e-11,
                "flash_attn d=" + std::to_string(c.d) + " n_kv=" + std::to_string(c.n_kv));
  }
}

// A decode batch of several sequences, each in cells of its own range of a long cache (the
// runner's layout): each query attends only to its own cells, wherever they lie among the tiles,
// and a query that sees no cell gets zeros.
TEST_F(CpuOps, FlashAttnOfSeveralSequencesAttendsEachToItsOwnCells) {
  // 5 query tokens: a decode step; 20: a prefill's share-out of the rows.
  for (const int64_t n_tok : {5, 20}) {
    const int64_t d = 64, n_head = 4, n_head_kv = 2, span = 300, n_kv = 4 * span;
    Graph g;
    const Shape sq{d, n_tok, n_head, 1}, sk{d, n_kv, n_head_kv, 1};
    Tensor q = leaf(g, sq);
    std::vector<float> kv = random(count(sk)), vv = random(count(sk));
    for (float& e : kv) e = ml::fp16_to_fp32(ml::fp32_to_fp16(e));
    for (float& e : vv) e = ml::fp16_to_fp32(ml::fp32_to_fp16(e));
    Tensor k = leaf_half(g, DType::F16, sk, kv);
    Tensor v = leaf_half(g, DType::F16, sk, vv);
    // Token t < 4 sees [t * span + 7t, t * span + 100 + 37t) but one cell inside; the rest none.
    std::vector<float> mv(n_kv * n_tok, -INFINITY);
    for (int64_t t = 0; t < 4; ++t) {
      for (int64_t c = t * span + 7 * t; c < t * span + 100 + 37 * t; ++c) {
        mv[t * n_kv + c] = c == t * span + 50 ? -INFINITY : 0.0f;
      }
    }
    Tensor m = leaf(g, {n_kv, n_tok, 1, 1}, mv);
    const float scale = 0.125f;
    Tensor out = ml::flash_attn(q, k, v, m, scale, false);
    const auto& qv = data_of(q);
    std::vector<float> want(d * n_head * n_tok, 0.0f);
    for (int64_t t = 0; t < 4; ++t)
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t hk = h / (n_head / n_head_kv);
        std::vector<double> s(n_kv, 0.0);
        double mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n_kv; ++j) {
          if (mv[t * n_kv + j] == -INFINITY) continue;
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) {
            dot += static_cast<double>(at(qv, sq, i, t, h, 0)) * at(kv, sk, i, j, hk, 0);
          }
          mx = std::max(mx, s[j] = dot * scale);
        }
        for (int64_t j = 0; j < n_kv; ++j) {
          s[j] = mv[t * n_kv + j] == -INFINITY ? 0.0 : std::exp(s[j] - mx);
          sum += s[j];
        }
        for (int64_t i = 0; i < d; ++i) {
          double o = 0;
          for (int64_t j = 0; j < n_kv; ++j) o += s[j] * at(vv, sk, i, j, hk, 0);
          want[(t * n_head + h) * d + i] = static_cast<float>(o / sum);
        }
      }
    expect_near(g, out, want, 1e-11,
                "flash_attn of four sequences' cells, tokens " + std::to_string(n_tok));
    for (int th : kThreadCounts) {
      const std::vector<float> got = run(g, out, th);
      for (int64_t i = 4 * n_head * d; i < n_tok * n_head * d; ++i) {
        ASSERT_EQ(got[i], 0.0f) << "a query that sees no cell, with " << th << " thread(s)";
      }
    }
  }
}

// ---------------------------------------------------------------- copies and casts

TEST_F(CpuOps, ContCopiesPermutedViewsOfEveryPlainDtype) {
  for (DType t : {DType::F32, DType::F16}) {
    Graph g;
    const Shape s{9, 4, 3, 2};
    std::vector<float> v = random(count(s));
    Tensor a = t == DType::F32 ? leaf(g, s, v) : leaf_half(g, t, s, v);
    if (t == DType::F16)
      for (float& e : v) e = ml::fp16_to_fp32(ml::fp32_to_fp16(e));
    Tensor p = ml::permute(a, 2, 0, 3, 1);  // -> [4, 2, 9, 3]
    Tensor out = ml::cast(ml::cont(p), DType::F32);
    std::vector<float> want;
    for (int64_t i3 = 0; i3 < 3; ++i3)
      for (int64_t i2 = 0; i2 < 9; ++i2)
        for (int64_t i1 = 0; i1 < 2; ++i1)
          for (int64_t i0 = 0; i0 < 4; ++i0) want.push_back(at(v, s, i2, i0, i3, i1));
    expect_near(g, out, want, 0, "cont " + std::string(ml::dtype_name(t)));
  }
}

// ggml's reference quantizers, written out for the test.
std::vector<uint8_t> naive_q8_0(const std::vector<float>& x) {
  std::vector<uint8_t> out;
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127;
    const float id = d ? 1.0f / d : 0.0f;
    const uint16_t dh = ml::fp32_to_fp16(d);
    out.push_back(dh & 0xff);
    out.push_back(dh >> 8);
    for (int j = 0; j < 32; ++j)
      out.push_back(static_cast<uint8_t>(static_cast<int8_t>(std::roundf(x[b * 32 + j] * id))));
  }
  return out;
}
std::vector<uint8_t> naive_q4_0(const std::vector<float>& x) {
  std::vector<uint8_t> out;
  for (size_t b = 0; b < x.size() / 32; ++b) {
    const float* v = &x[b * 32];
    float amax = 0, mx = 0;
    for (int j = 0; j < 32; ++j) {
      if (amax < std::fabs(v[j])) {
        amax = std::fabs(v[j]);
        mx = v[j];
      }
    }
    const float d = mx / -8;
    const float id = d ? 1.0f / d : 0.0f;
    const uint16_t dh = ml::fp32_to_fp16(d);
    out.push_back(dh & 0xff);
    out.push_back(dh >> 8);
    for (int j = 0; j < 16; ++j) {
      const int a = std::min(15, static_cast<int>(static_cast<int8_t>(v[j] * id + 8.5f)));
      const int c = std::min(15, static_cast<int>(static_cast<int8_t>(v[j + 16] * id + 8.5f)));
      out.push_back(static_cast<uint8_t>(a | c << 4));
    }
  }
  return out;
}

TEST_F(CpuOps, CastsBetweenFloatTypesRoundToNearestEven) {
  const Shape s{33, 5, 1, 1};
  for (DType from : {DType::F32, DType::F16, DType::BF16}) {
    for (DType to : {DType::F32, DType::F16, DType::BF16}) {
      Graph g;
      std::vector<float> v = random(count(s), -100.0f, 100.0f);
      Tensor a = from == DType::F32 ? leaf(g, s, v) : leaf_half(g, from, s, v);
      auto round_to = [](DType t, float f) {
        if (t == DType::F16) return ml::fp16_to_fp32(ml::fp32_to_fp16(f));
        if (t == DType::BF16) return ml::bf16_to_fp32(ml::fp32_to_bf16(f));
        return f;
      };
      std::vector<float> want;
      for (float e : v) want.push_back(round_to(to, round_to(from, e)));
      Tensor out = ml::cast(ml::cast(a, to), DType::F32);
      expect_near(g, out, want, 0,
                  std::string(ml::dtype_name(from)) + "->" + std::string(ml::dtype_name(to)));
    }
  }
}

TEST_F(CpuOps, CastToQ8_0AndQ4_0WritesTheReferenceBytes) {
  for (DType to : {DType::Q8_0, DType::Q4_0}) {
    Graph g;
    const Shape s{96, 7, 1, 1};
    std::vector<float> v = random(count(s), -3.0f, 3.0f);
    for (int j = 0; j < 32; ++j) v[j] = 0.0f;  // an all-zero block
    v[40] = 0.5f * 3.0f / 127 * 17;            // sits near a rounding tie
    Tensor out = ml::cast(leaf(g, s, v), to);
    const auto want = to == DType::Q8_0 ? naive_q8_0(v) : naive_q4_0(v);
    for (int th : kThreadCounts) {
      const std::vector<char> got = run_bytes(g, out, th);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_EQ(0, std::memcmp(got.data(), want.data(), want.size()))
          << ml::dtype_name(to) << " with " << th << " thread(s)";
    }
  }
}

TEST_F(CpuOps, CastToQ8_0AndQ4_0MatchesTheQuantReference) {
  for (DType to : {DType::Q8_0, DType::Q4_0}) {
    Graph g;
    const Shape s{256, 9, 1, 1};
    std::vector<float> v = random(count(s), -5.0f, 5.0f);
    Tensor out = ml::cast(leaf(g, s, v), to);
    std::vector<char> want(ml::row_size(to, 256) * 9);
    ml::quant::quantize_row(to, v.data(), want.data(), static_cast<int64_t>(v.size()));
    for (int th : kThreadCounts) {
      EXPECT_EQ(run_bytes(g, out, th), want) << ml::dtype_name(to) << " threads " << th;
    }
  }
}

TEST_F(CpuOps, GetRowsDequantizesBlockFormats) {
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    Graph g;
    const int64_t ne0 = 256, n_rows = 6;
    std::vector<float> v = random(ne0 * n_rows);
    std::vector<char> q(ml::row_size(t, ne0) * n_rows);
    ml::quant::quantize_row(t, v.data(), q.data(), ne0 * n_rows);
    Tensor table = g.leaf(t, {ne0, n_rows}, q.data());
    std::vector<int32_t> ids = {5, 0, 2, 5};
    Tensor out = ml::get_rows(table, leaf_i32(g, {4}, ids));
    std::vector<float> all(ne0 * n_rows), want;
    ml::quant::dequantize_row(t, q.data(), all.data(), ne0 * n_rows);
    for (int32_t id : ids)
      want.insert(want.end(), all.begin() + id * ne0, all.begin() + (id + 1) * ne0);
    expect_near(g, out, want, 0, "get_rows " + std::string(ml::dtype_name(t)));
  }
}

TEST_F(CpuOps, GetRowsWidensF32F16Bf16RowsPerBatch) {
  for (DType t : {DType::F32, DType::F16, DType::BF16}) {
    Graph g;
    const Shape s{33, 10, 2, 1};
    std::vector<float> v = random(count(s));
    Tensor table = t == DType::F32 ? leaf(g, s, v) : leaf_half(g, t, s, v);
    std::vector<int32_t> ids = {9, 0, 3, 3, 1, 7};  // [3, 2]
    Tensor out = ml::get_rows(table, leaf_i32(g, {3, 2}, ids));
    std::vector<float> want;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < 3; ++i)
        for (int64_t e = 0; e < 33; ++e) {
          const float x = at(v, s, e, ids[b * 3 + i], b, 0);
          want.push_back(t == DType::F16    ? ml::fp16_to_fp32(ml::fp32_to_fp16(x))
                         : t == DType::BF16 ? ml::bf16_to_fp32(ml::fp32_to_bf16(x))
                                            : x);
        }
    expect_near(g, out, want, 0, "get_rows " + std::string(ml::dtype_name(t)));
  }
}

TEST_F(CpuOps, SetRowsScattersIntoEveryCacheDtypeWithI32OrI64Indices) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    for (DType it : {DType::I32, DType::I64}) {
      const int64_t ne0 = 64, n_rows = 9, n = 4, b2 = 2;
      const size_t row_bytes = ml::row_size(t, ne0);
      std::vector<char> cache(row_bytes * n_rows * b2, 0x5a);
      std::vector<float> rows = random(ne0 * n * b2);
      std::vector<int64_t> idx = {8, 0, 5, 2, 1, 3, 7, 6};
      for (int th : kThreadCounts) {
        Graph g;
        std::fill(cache.begin(), cache.end(), 0x5a);
        Tensor dst = g.leaf(t, {ne0, n_rows, b2}, cache.data());
        Tensor src = leaf(g, {ne0, n, b2}, rows);
        Tensor ids = it == DType::I64
                         ? leaf_i64(g, {n, b2}, idx)
                         : leaf_i32(g, {n, b2}, std::vector<int32_t>(idx.begin(), idx.end()));
        Tensor out = ml::set_rows(dst, src, ids);
        auto be = make_backend({.n_threads = th});
        ml::Executor ex({be.get()});
        ex.compute(g, {out});
        for (int64_t b = 0; b < b2; ++b)
          for (int64_t r = 0; r < n_rows; ++r) {
            const char* got = cache.data() + (b * n_rows + r) * row_bytes;
            int64_t from = -1;
            for (int64_t i = 0; i < n; ++i)
              if (idx[b * n + i] == r) from = i;
            std::vector<char> want(row_bytes, 0x5a);
            if (from >= 0) {
              std::vector<float> x(rows.begin() + (b * n + from) * ne0,
                                   rows.begin() + (b * n + from + 1) * ne0);
              if (t == DType::Q8_0 || t == DType::Q4_0) {
                const auto q = t == DType::Q8_0 ? naive_q8_0(x) : naive_q4_0(x);
                std::memcpy(want.data(), q.data(), row_bytes);
              } else if (t == DType::F32) {
                std::memcpy(want.data(), x.data(), row_bytes);
              } else {
                for (int64_t e = 0; e < ne0; ++e) {
                  const uint16_t h =
                      t == DType::F16 ? ml::fp32_to_fp16(x[e]) : ml::fp32_to_bf16(x[e]);
                  std::memcpy(want.data() + 2 * e, &h, 2);
                }
              }
            }
            EXPECT_EQ(0, std::memcmp(got, want.data(), row_bytes))
                << ml::dtype_name(t) << " idx " << ml::dtype_name(it) << " row " << r << " batch "
                << b << " threads " << th;
          }
      }
    }
  }
}

TEST_F(CpuOps, ConcatJoinsAlongEachDimension) {
  for (int dim = 0; dim < 4; ++dim) {
    Graph g;
    Shape sa{7, 3, 2, 2}, sb = sa;
    sb[dim] = dim == 0 ? 9 : 2;
    Tensor store = leaf(g, {sa[1], sa[0], sa[2], sa[3]});
    Tensor a = ml::permute(store, 1, 0, 2, 3);  // non-contiguous first input
    Tensor b = leaf(g, sb);
    Tensor out = ml::concat(a, b, dim);
    Shape so = sa;
    so[dim] += sb[dim];
    std::vector<float> want;
    const auto& av = data_of(store);
    const auto& bv = data_of(b);
    for (int64_t i3 = 0; i3 < so[3]; ++i3)
      for (int64_t i2 = 0; i2 < so[2]; ++i2)
        for (int64_t i1 = 0; i1 < so[1]; ++i1)
          for (int64_t i0 = 0; i0 < so[0]; ++i0) {
            int64_t i[4] = {i0, i1, i2, i3};
            if (i[dim] < sa[dim]) {
              want.push_back(at(av, {sa[1], sa[0], sa[2], sa[3]}, i1, i0, i2, i3));
            } else {
              i[dim] -= sa[dim];
              want.push_back(at(bv, sb, i[0], i[1], i[2], i[3]));
            }
          }
    expect_near(g, out, want, 0, "concat dim " + std::to_string(dim));
  }
}

// ---------------------------------------------------------------- reductions

TEST_F(CpuOps, ArgmaxSumRowsAndMeanReduceEachRow) {
  for (int64_t n0 : kLengths) {
    Graph g;
    const Shape s{n0, 6, 1, 1};
    std::vector<float> v = random(count(s), -10.0f, 10.0f);
    v[2 * n0 + n0 / 2] = 50.0f;  // a tie: the first index wins
    v[2 * n0 + n0 - 1] = 50.0f;
    Tensor x = leaf(g, s, v);
    std::vector<float> sums, means;
    std::vector<int32_t> arg;
    for (int64_t r = 0; r < 6; ++r) {
      double sum = 0;
      int32_t best = 0;
      for (int64_t i = 0; i < n0; ++i) {
        sum += v[r * n0 + i];
        if (v[r * n0 + i] > v[r * n0 + best]) best = static_cast<int32_t>(i);
      }
      sums.push_back(sum);
      means.push_back(sum / n0);
      arg.push_back(best);
    }
    expect_near(g, ml::sum_rows(x), sums, 1e-12, "sum_rows");
    expect_near(g, ml::mean(x), means, 1e-12, "mean");
    Tensor am = ml::argmax(x);
    for (int th : kThreadCounts) {
      const std::vector<char> got = run_bytes(g, am, th);
      std::vector<int32_t> ids(6);
      std::memcpy(ids.data(), got.data(), 6 * sizeof(int32_t));
      EXPECT_EQ(ids, arg) << "argmax n0=" << n0 << " threads " << th;
    }
  }
}

TEST_F(CpuOps, SumRowsOfATransposedInput) {
  Graph g;
  Tensor store = leaf(g, {6, 257});
  Tensor x = ml::transpose(store);  // [257, 6]
  const auto& v = data_of(store);
  std::vector<float> want(6, 0.0f);
  for (int64_t r = 0; r < 6; ++r) {
    double s = 0;
    for (int64_t i = 0; i < 257; ++i) s += v[i * 6 + r];
    want[r] = s;
  }
  expect_near(g, ml::sum_rows(x), want, 1e-12, "sum_rows transposed");
}

// ---------------------------------------------------------------- convolution

float naive_conv_in(const std::vector<float>& img, const Shape& si, int64_t x, int64_t y, int64_t c,
                    int64_t b) {
  if (x < 0 || y < 0 || x >= si[0] || y >= si[1]) return 0.0f;
  return at(img, si, x, y, c, b);
}

TEST_F(CpuOps, Im2ColAndConv2dMatchADirectConvolution) {
  struct Case {
    int64_t w, h, cin, cout, kw, kh, n;
    int32_t s0, s1, p0, p1, d0, d1;
  };
  const Case cases[] = {
      {9, 7, 3, 5, 3, 3, 2, 1, 1, 1, 1, 1, 1},
      {16, 16, 3, 8, 4, 4, 1, 4, 4, 0, 0, 1, 1},  // patch embedding
      {11, 10, 2, 3, 3, 2, 1, 2, 1, 2, 0, 2, 1},  // stride, padding, dilation
  };
  for (const Case& c : cases) {
    for (DType kt : {DType::F32, DType::F16}) {
      Graph g;
      const Shape sk{c.kw, c.kh, c.cin, c.cout}, si{c.w, c.h, c.cin, c.n};
      std::vector<float> kv = random(count(sk));
      if (kt == DType::F16)
        for (float& e : kv) e = ml::fp16_to_fp32(ml::fp32_to_fp16(e));
      Tensor k = kt == DType::F32 ? leaf(g, sk, kv) : leaf_half(g, DType::F16, sk, kv);
      Tensor img = leaf(g, si);
      const auto& iv = data_of(img);
      const int64_t ow = (c.w + 2 * c.p0 - c.d0 * (c.kw - 1) - 1) / c.s0 + 1;
      const int64_t oh = (c.h + 2 * c.p1 - c.d1 * (c.kh - 1) - 1) / c.s1 + 1;
      std::vector<float> cols, conv(ow * oh * c.cout * c.n);
      for (int64_t b = 0; b < c.n; ++b)
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            for (int64_t ci = 0; ci < c.cin; ++ci)
              for (int64_t ky = 0; ky < c.kh; ++ky)
                for (int64_t kx = 0; kx < c.kw; ++kx)
                  cols.push_back(naive_conv_in(iv, si, ox * c.s0 + kx * c.d0 - c.p0,
                                               oy * c.s1 + ky * c.d1 - c.p1, ci, b));
            for (int64_t co = 0; co < c.cout; ++co) {
              double s = 0;
              for (int64_t ci = 0; ci < c.cin; ++ci)
                for (int64_t ky = 0; ky < c.kh; ++ky)
                  for (int64_t kx = 0; kx < c.kw; ++kx)
                    s += at(kv, sk, kx, ky, ci, co) *
                         static_cast<double>(naive_conv_in(iv, si, ox * c.s0 + kx * c.d0 - c.p0,
                                                           oy * c.s1 + ky * c.d1 - c.p1, ci, b));
              conv[((b * c.cout + co) * oh + oy) * ow + ox] = s;
            }
          }
      ml::op::Im2Col pi{c.s0, c.s1, c.p0, c.p1, c.d0, c.d1};
      ml::op::Conv2D pc{c.s0, c.s1, c.p0, c.p1, c.d0, c.d1};
      expect_near(g, ml::im2col(k, img, pi), cols, 0, "im2col");
      std::vector<float> cols16;
      for (float e : cols) cols16.push_back(ml::fp16_to_fp32(ml::fp32_to_fp16(e)));
      expect_near(g, ml::cast(ml::im2col(k, img, pi, DType::F16), DType::F32), cols16, 0,
                  "im2col f16");
      expect_near(g, ml::conv2d(k, img, pc), conv, 1e-12,
                  "conv2d kernel " + std::string(ml::dtype_name(kt)));
    }
  }
}

}  // namespace
}  // namespace corral::backend::cpu
