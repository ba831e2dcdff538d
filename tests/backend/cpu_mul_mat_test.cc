// The CPU backend's mul_mat against a dequantize-and-dot computed here in double precision, for
// every weight dtype, awkward shapes, batch broadcast and strided activations; and the SIMD
// kernels and activation quantizers against the scalar ones.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend/cpu/cpu.h"
#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/backend.h"
#include "ml/fp16.h"
#include "ml/graph.h"
#include "ml/quant/blocks.h"
#include "ml/quant/quant.h"

namespace corral::backend::cpu {
namespace {

using ml::DType;

constexpr DType kWeightTypes[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q4_0, DType::Q4_1,
                                  DType::Q5_0, DType::Q5_1, DType::Q8_0, DType::Q8_1, DType::Q2_K,
                                  DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q8_K};

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Squared error of the outputs relative to the sum over outputs of sum_l (w_l x_l)^2: the scale
// of a dot product's rounding and quantization noise, which does not shrink when the terms of
// a dot cancel (as the squared result does), so single short dots are judged fairly too.
double relative_error(const std::vector<double>& ref, const std::vector<float>& out,
                      double terms2) {
  double err = 0;
  for (size_t i = 0; i < out.size(); ++i) err += (out[i] - ref[i]) * (out[i] - ref[i]);
  return err / terms2;
}

// What the activations become before the dot products: quantized to the vec-dot type and back
// (f32 for float weights), so the exact comparison isolates the kernels' arithmetic.
std::vector<float> as_seen_by_kernel(DType w, const float* x, int64_t k) {
  const simd::MatMulKernels& kern = simd::matmul_kernels(w, simd::Isa::kScalar);
  std::vector<float> out(x, x + k);
  if (kern.vec_type == DType::F32) return out;
  std::vector<unsigned char> q(ml::row_size(kern.vec_type, k));
  kern.from_f32(x, q.data(), k);
  ml::quant::dequantize_row(kern.vec_type, q.data(), out.data(), k);
  return out;
}

struct Case {
  DType w;
  int64_t k, m, n;
  int64_t b2 = 1, B2 = 1;
  bool strided = false;  // weights and activations with padded rows, activations padded batches
};

std::string describe(const Case& c) {
  return std::string(ml::dtype_name(c.w)) + " k=" + std::to_string(c.k) +
         " m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " b2=" + std::to_string(c.b2) +
         " B2=" + std::to_string(c.B2) + (c.strided ? " strided" : "");
}

// Runs mul_mat on the CPU backend and checks it (a) against dequantized weights times the
// activations as the kernel sees them (only float rounding may differ) and (b) against
// dequantized weights times the original f32 activations (activation quantization noise).
// With constant_weights the product runs on a backend of its own that is told the weights are
// constant, so it reads them repacked into panels (CpuOptions::constant).
void check(const Case& c, ml::Backend& cpu, double exact_limit, double quant_limit,
           bool constant_weights = false, simd::Isa isa = simd::best_isa()) {
  SCOPED_TRACE(describe(c));
  const int64_t k = c.k, m = c.m, n = c.n;
  const size_t wrow = ml::row_size(c.w, k);
  std::vector<float> wf = random_floats(k * m * c.b2, 1234 + static_cast<uint32_t>(k + m));
  std::vector<unsigned char> wq(wrow * m * c.b2);
  for (int64_t r = 0; r < m * c.b2; ++r) {
    ml::quant::quantize_row(c.w, wf.data() + r * k, wq.data() + r * wrow, k);
  }
  std::vector<float> wd(k * m * c.b2);
  for (int64_t r = 0; r < m * c.b2; ++r) {
    ml::quant::dequantize_row(c.w, wq.data() + r * wrow, wd.data() + r * k, k);
  }

  // Activations [k, n, B2], optionally with 8 floats of padding after each row and 3 rows of
  // padding after each batch.
  const int64_t row_stride = c.strided ? k + 8 : k;
  const int64_t batch_stride = row_stride * (n + (c.strided ? 3 : 0));
  std::vector<float> xbuf = random_floats(batch_stride * c.B2, 99 + static_cast<uint32_t>(n));

  ml::Graph g;
  // Strided weights (a view of a matrix with one spare block per row, as a K cache is) keep the
  // same values.
  const size_t ts = ml::type_size(c.w);
  const size_t wstride = c.strided ? wrow + ts : wrow;
  std::vector<unsigned char> wbuf(wstride * m * c.b2, 0xA5);
  for (int64_t r = 0; r < m * c.b2; ++r) {
    std::memcpy(wbuf.data() + r * wstride, wq.data() + r * wrow, wrow);
  }
  ml::Tensor wleaf =
      g.leaf(c.w, {k + (c.strided ? ml::block_size(c.w) : 0), m, c.b2, 1}, wbuf.data());
  ml::Tensor w =
      ml::view(wleaf, {k, m, c.b2, 1}, {ts, wstride, wstride * m, wstride * m * c.b2}, 0);
  ml::Tensor xs = g.leaf(DType::F32, {batch_stride * c.B2}, xbuf.data());
  ml::Tensor x =
      ml::view(xs, {k, n, c.B2, 1},
               {4, static_cast<size_t>(row_stride) * 4, static_cast<size_t>(batch_stride) * 4,
                static_cast<size_t>(batch_stride * c.B2) * 4},
               0);
  ml::Tensor y = ml::mul_mat(w, x);
  std::unique_ptr<ml::Backend> own;
  if (constant_weights) {
    own = make_backend({.n_threads = 2,
                        .constant = {std::as_bytes(std::span<const unsigned char>(wbuf))},
                        .isa = isa});
  }
  ml::Executor ex({constant_weights ? own.get() : &cpu});
  ex.compute(g, {y});
  ASSERT_EQ(y.shape(), (ml::Shape{m, n, c.B2, 1}));

  std::vector<double> ref_exact(m * n * c.B2), ref_f32(m * n * c.B2);
  double terms2 = 0;
  std::vector<float> out(m * n * c.B2);
  const int64_t bcast = c.B2 / c.b2;
  for (int64_t i2 = 0; i2 < c.B2; ++i2) {
    for (int64_t j = 0; j < n; ++j) {
      const float* xr = xbuf.data() + i2 * batch_stride + j * row_stride;
      const std::vector<float> xk = as_seen_by_kernel(c.w, xr, k);
      for (int64_t i = 0; i < m; ++i) {
        const float* wr = wd.data() + ((i2 / bcast) * m + i) * k;
        double se = 0, sf = 0;
        for (int64_t l = 0; l < k; ++l) {
          se += static_cast<double>(wr[l]) * xk[l];
          sf += static_cast<double>(wr[l]) * xr[l];
          terms2 += static_cast<double>(wr[l]) * xr[l] * wr[l] * xr[l];
        }
        const size_t o = (i2 * n + j) * m + i;
        ref_exact[o] = se;
        ref_f32[o] = sf;
        out[o] = *reinterpret_cast<const float*>(static_cast<const char*>(y.data()) + i * y.nb(0) +
                                                 j * y.nb(1) + i2 * y.nb(2));
      }
    }
  }
  EXPECT_LT(relative_error(ref_exact, out, terms2), exact_limit) << "kernel arithmetic";
  EXPECT_LT(relative_error(ref_f32, out, terms2), quant_limit) << "activation quantization";
}

bool float_weights(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// Against the exact reference only f32 rounding differs (~k * 2^-48 relative), except that
// Q4_1/Q5_1 use the Q8_1 block sums stored as halves (ggml's format): a relative 2^-12 on the
// offset term. Quantized weights see q8 activations: their noise relative to the squared terms
// is (amax/127)^2/12 / E[x^2], 2e-5..5e-5 for Gaussian activations (Q8_0..Q8_K), more for one
// short dot; a wrong scale or group gives 1e-1 or more.
double exact_limit(DType t) { return t == DType::Q4_1 || t == DType::Q5_1 ? 1e-5 : 1e-8; }
double quant_limit(DType t) { return float_weights(t) ? 1e-8 : 1e-3; }

TEST(CpuMulMat, MatchesDequantizedDotForEveryDtypeAndAwkwardShape) {
  auto cpu = make_backend({.n_threads = 2});
  for (DType t : kWeightTypes) {
    const int64_t bs = ml::block_size(t);
    // 37: float weights have no blocks, so rows may end mid-vector (attention's K and V).
    for (int64_t k : {int64_t{37}, int64_t{32}, int64_t{256}, int64_t{288}, int64_t{2048}}) {
      if (k % bs != 0) continue;
      for (int64_t m : {1, 3, 17}) {
        for (int64_t n : {1, 7, 33}) check({t, k, m, n}, *cpu, exact_limit(t), quant_limit(t));
      }
    }
  }
}

TEST(CpuMulMat, BroadcastsWeightsOverBatchAndReadsStridedOperands) {
  auto cpu = make_backend({.n_threads = 2});
  for (DType t : kWeightTypes) {
    const int64_t k = ml::block_size(t) == 256 ? 512 : 96;
    check({t, k, 33, 5, 2, 6, true}, *cpu, exact_limit(t), quant_limit(t));
    check({t, k, 7, 1, 2, 6, true}, *cpu, exact_limit(t), quant_limit(t));
  }
}

TEST(CpuMulMat, LargeMatrixSplitIntoManyChunksMatches) {
  auto cpu = make_backend({.n_threads = 2});
  for (DType t : {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    check({t, 2048, 300, 70}, *cpu, exact_limit(t), quant_limit(t));
  }
}

TEST(CpuMulMat, LongRowsMatchInMatrixVectorProducts) {
  // 133 blocks of 32: more than one segment of the matrix-vector kernels' precomputed terms.
  auto cpu = make_backend({.n_threads = 2});
  for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0}) {
    check({t, 4256, 37, 1}, *cpu, exact_limit(t), quant_limit(t));
  }
}

// On every instruction set this CPU runs: each packs the weights into its own panel layout.
TEST(CpuMulMat, ConstantWeightsRepackedIntoPanelsMatchForAnyColumnCount) {
  auto unused = make_backend({.n_threads = 1});
  for (simd::Isa isa : simd::kAllIsas) {
    if (!simd::isa_supported(isa)) continue;
    SCOPED_TRACE(simd::isa_name(isa));
    int packed_types = 0;
    for (DType t : kWeightTypes) {
      if (!simd::matmul_kernels(t, isa).panel) continue;
      ++packed_types;
      const int64_t bs = ml::block_size(t);
      for (int64_t k : {bs * 2, int64_t{2048}}) {
        // Partial last panels (m not a multiple of 8), several row chunks (77 > 64).
        for (int64_t m : {1, 8, 17, 77}) {
          for (int64_t n : {1, 2, 3, 4, 5, 33}) {
            check({t, k, m, n}, *unused, exact_limit(t), quant_limit(t), true, isa);
          }
        }
      }
      // Weights broadcast over batches are 3-D: read in place, not packed.
      check({t, bs * 2, 33, 5, 2, 6, true}, *unused, exact_limit(t), quant_limit(t), true, isa);
    }
    if (isa != simd::Isa::kScalar) {
      EXPECT_GE(packed_types, 3);
    }
  }
}

// The contract of CpuOptions::constant, observed: once packed, the weights are read from the
// copy, so a change to the original bytes is not seen.
TEST(CpuMulMat, ConstantWeightsArePackedOnceAndReadFromTheCopy) {
  if (!simd::matmul_kernels(DType::Q4_0).panel) GTEST_SKIP() << "no panel kernels on this CPU";
  const int64_t k = 64, m = 16;
  const std::vector<float> wf = random_floats(k * m, 3);
  std::vector<unsigned char> wq(ml::row_size(DType::Q4_0, k) * m);
  for (int64_t r = 0; r < m; ++r) {
    ml::quant::quantize_row(DType::Q4_0, wf.data() + r * k,
                            wq.data() + r * ml::row_size(DType::Q4_0, k), k);
  }
  const std::vector<float> xf = random_floats(k, 4);
  auto cpu = make_backend(
      {.n_threads = 1, .constant = {std::as_bytes(std::span<const unsigned char>(wq))}});
  ml::Executor ex({cpu.get()});
  auto run = [&] {
    ml::Graph g;
    ml::Tensor y = ml::mul_mat(g.leaf(DType::Q4_0, {k, m}, wq.data()),
                               g.leaf(DType::F32, {k, 1}, const_cast<float*>(xf.data())));
    ex.compute(g, {y});
    const auto* p = static_cast<const float*>(y.data());
    return std::vector<float>(p, p + m);
  };
  const std::vector<float> first = run();
  std::fill(wq.begin(), wq.end(), 0);
  EXPECT_EQ(run(), first);
}

// Consecutive products of the same activations (a layer's q, k, v; its gate and up) run in one
// pass on packed weights; each result is the one the product gives alone, bit for bit, whatever
// mixes of dtypes, row counts and columns, and wherever another op stands between them.
TEST(CpuMulMat, ProductsOfTheSameActivationsTogetherGiveWhatEachGivesAlone) {
  const int64_t k = 512;
  struct W {
    DType t;
    int64_t m;
  };
  // Q4_K and Q6_K take the same activations, Q4_0 others; six in a row exceed a pass's limit.
  const std::vector<W> ws = {{DType::Q4_K, 77}, {DType::Q6_K, 20}, {DType::Q4_K, 8},
                             {DType::Q6_K, 9},  {DType::Q4_K, 64}, {DType::Q4_0, 33},
                             {DType::Q4_0, 17}, {DType::Q4_K, 3}};
  std::vector<size_t> offset;
  size_t bytes = 0;
  for (const W& w : ws) {
    offset.push_back(bytes);
    bytes += ml::row_size(w.t, k) * static_cast<size_t>(w.m);
  }
  std::vector<unsigned char> weights(bytes);
  for (size_t i = 0; i < ws.size(); ++i) {
    const std::vector<float> f = random_floats(k * ws[i].m, 10 + static_cast<uint32_t>(i));
    for (int64_t r = 0; r < ws[i].m; ++r) {
      ml::quant::quantize_row(ws[i].t, f.data() + r * k,
                              weights.data() + offset[i] + r * ml::row_size(ws[i].t, k), k);
    }
  }
  const std::span<const std::byte> constant = std::as_bytes(std::span(weights));
  for (int threads : {1, 2}) {
    for (int64_t n : {1, 3}) {
      const std::vector<float> xf = random_floats(k * n, 20 + static_cast<uint32_t>(n));
      auto cpu = make_backend({.n_threads = threads, .constant = {constant}});
      ml::Executor ex({cpu.get()});
      auto leaf = [&](ml::Graph& g, size_t i) {
        return g.leaf(ws[i].t, {k, ws[i].m}, weights.data() + offset[i]);
      };
      // Alone: one product per graph.
      std::vector<std::vector<float>> alone;
      for (size_t i = 0; i < ws.size(); ++i) {
        ml::Graph g;
        ml::Tensor y =
            ml::mul_mat(leaf(g, i), g.leaf(DType::F32, {k, n}, const_cast<float*>(xf.data())));
        ex.compute(g, {y});
        const auto* p = static_cast<const float*>(y.data());
        alone.emplace_back(p, p + ws[i].m * n);
      }
      // Together, with views between them and a scale after the sixth (which ends a run).
      ml::Graph g;
      ml::Tensor x = g.leaf(DType::F32, {k, n}, const_cast<float*>(xf.data()));
      std::vector<ml::Tensor> ys;
      for (size_t i = 0; i < ws.size(); ++i) {
        ml::Tensor y = ml::reshape(ml::mul_mat(leaf(g, i), x), {ws[i].m * n});
        if (i == 5) y = ml::scale(y, 1.0f);
        ys.push_back(y);
      }
      ex.compute(g, ys);
      for (size_t i = 0; i < ws.size(); ++i) {
        const auto* p = static_cast<const float*>(ys[i].data());
        EXPECT_EQ(std::vector<float>(p, p + ws[i].m * n), alone[i])
            << "product " << i << " (" << ml::dtype_name(ws[i].t) << ", m " << ws[i].m << "), n "
            << n << ", " << threads << " threads";
      }
    }
  }
}

// A column's result does not depend on where it stands in the batch (equal prompts batched
// together give equal embeddings): columns 0, 5 and 8 hold the same activations.
TEST(CpuMulMat, EqualColumnsGiveEqualResultsWhereverTheyStand) {
  const int64_t k = 256, m = 16, n = 9;
  for (DType t : kWeightTypes) {
    if (!simd::matmul_kernels(t).panel) continue;
    const std::vector<float> wf = random_floats(k * m, 30);
    std::vector<unsigned char> wq(ml::row_size(t, k) * m);
    for (int64_t r = 0; r < m; ++r) {
      ml::quant::quantize_row(t, wf.data() + r * k, wq.data() + r * ml::row_size(t, k), k);
    }
    std::vector<float> xf = random_floats(k * n, 31);
    for (int64_t c : {5, 8}) std::copy(xf.begin(), xf.begin() + k, xf.begin() + c * k);
    auto cpu = make_backend(
        {.n_threads = 1, .constant = {std::as_bytes(std::span<const unsigned char>(wq))}});
    ml::Executor ex({cpu.get()});
    ml::Graph g;
    ml::Tensor y = ml::mul_mat(g.leaf(t, {k, m}, wq.data()), g.leaf(DType::F32, {k, n}, xf.data()));
    ex.compute(g, {y});
    const auto* p = static_cast<const float*>(y.data());
    for (int64_t c : {5, 8}) {
      EXPECT_EQ(std::vector<float>(p, p + m), std::vector<float>(p + c * m, p + (c + 1) * m))
          << ml::dtype_name(t) << " column " << c;
    }
  }
}

TEST(CpuMulMat, SingleThreadGivesTheSameResultAsTwo) {
  auto one = make_backend({.n_threads = 1});
  check({DType::Q4_K, 512, 129, 9}, *one, 1e-8, 1e-3);
  check({DType::F32, 64, 65, 13}, *one, 1e-8, 1e-8);
}

// The instruction sets beyond scalar that this CPU runs: each one's kernels are compared with
// the scalar ones. Sets it lacks are named in a message (their kernels are untested here).
std::vector<simd::Isa> simd_isas_here() {
  std::vector<simd::Isa> out;
  for (simd::Isa isa : simd::kAllIsas) {
    if (isa == simd::Isa::kScalar) continue;
    if (simd::isa_supported(isa)) {
      out.push_back(isa);
    } else {
      std::cout << "[  NOTE    ] this CPU does not run the " << simd::isa_name(isa)
                << " kernels: not tested here\n";
    }
  }
  return out;
}

// A set the CPU lacks is refused with a message naming it (never run into an illegal
// instruction); the sets it has are accepted.
TEST(CpuMulMatSimd, BackendRefusesAnInstructionSetThisCpuLacks) {
  int lacking = 0;
  for (simd::Isa isa : simd::kAllIsas) {
    SCOPED_TRACE(simd::isa_name(isa));
    if (simd::isa_supported(isa)) {
      EXPECT_NO_THROW(make_backend({.n_threads = 1, .isa = isa}));
      continue;
    }
    ++lacking;
    try {
      make_backend({.n_threads = 1, .isa = isa});
      ADD_FAILURE() << "accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(simd::isa_name(isa)), std::string::npos) << e.what();
    }
  }
  if (lacking == 0) GTEST_SKIP() << "this CPU runs every set: nothing to refuse";
}

TEST(CpuMulMatSimd, EveryWeightDtypeHasKernelsOnEveryInstructionSet) {
  for (simd::Isa isa : simd::kAllIsas) {
    if (!simd::isa_supported(isa)) continue;
    for (DType t : kWeightTypes) {
      const simd::MatMulKernels& k = simd::matmul_kernels(t, isa);
      EXPECT_NE(k.gemm, nullptr) << ml::dtype_name(t) << " " << simd::isa_name(isa);
      EXPECT_EQ(k.from_f32 == nullptr, k.vec_type == DType::F32)
          << ml::dtype_name(t) << " " << simd::isa_name(isa);
    }
  }
}

// ---- SIMD kernels against the scalar ones, on random block bytes ----

// Random blocks: random bytes with the scale fields replaced by modest halves (random bits
// would give infinities and NaNs).
std::vector<unsigned char> random_blocks(DType t, int64_t k, int64_t rows, uint32_t seed) {
  namespace q = ml::quant;
  const size_t row = ml::row_size(t, k);
  std::vector<unsigned char> buf(row * rows);
  std::mt19937 rng(seed);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  if (t == DType::F32 || t == DType::F16 || t == DType::BF16) {
    std::vector<float> f = random_floats(k * rows, seed);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < k; ++i) {
        const float v = f[r * k + i];
        if (t == DType::F32) std::memcpy(buf.data() + r * row + 4 * i, &v, 4);
        const uint16_t h = t == DType::F16 ? ml::fp32_to_fp16(v) : ml::fp32_to_bf16(v);
        if (t != DType::F32) std::memcpy(buf.data() + r * row + 2 * i, &h, 2);
      }
    }
    return buf;
  }
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  auto put_half = [&](unsigned char* p) {
    const uint16_t h = ml::fp32_to_fp16(scale(rng));
    std::memcpy(p, &h, 2);
  };
  const size_t bsz = ml::type_size(t);
  for (size_t off = 0; off < buf.size(); off += bsz) {
    unsigned char* b = buf.data() + off;
    switch (t) {
      case DType::Q4_0:
      case DType::Q5_0:
      case DType::Q8_0:
        put_half(b);
        break;
      case DType::Q4_1:
      case DType::Q5_1:
      case DType::Q8_1:
      case DType::Q4_K:
      case DType::Q5_K:
        put_half(b);
        put_half(b + 2);
        break;
      case DType::Q2_K:
        put_half(b + offsetof(q::BlockQ2_K, d));
        put_half(b + offsetof(q::BlockQ2_K, dmin));
        break;
      case DType::Q3_K:
        put_half(b + offsetof(q::BlockQ3_K, d));
        break;
      case DType::Q6_K:
        put_half(b + offsetof(q::BlockQ6_K, d));
        break;
      case DType::Q8_K: {
        const float d = scale(rng);
        std::memcpy(b, &d, 4);
        break;
      }
      default:
        break;
    }
  }
  return buf;
}

TEST(CpuMulMatSimd, GemmMatchesScalarOnRandomBlocks) {
  const std::vector<simd::Isa> isas = simd_isas_here();
  if (isas.empty()) GTEST_SKIP() << "this CPU runs only the scalar kernels";
  for (simd::Isa isa : isas) {
    SCOPED_TRACE(simd::isa_name(isa));
    for (DType t : kWeightTypes) {
      SCOPED_TRACE(std::string(ml::dtype_name(t)));
      const simd::MatMulKernels& fast = simd::matmul_kernels(t, isa);
      const simd::MatMulKernels& slow = simd::matmul_kernels(t, simd::Isa::kScalar);
      ASSERT_EQ(fast.vec_type, slow.vec_type);
      for (int64_t k : {int64_t{256}, int64_t{768}}) {
        for (int nr : {1, 5}) {
          for (int nc : {1, 2, 7}) {
            const std::vector<unsigned char> w = random_blocks(t, k, nr, 7 + nr * 10 + nc);
            const std::vector<float> x = random_floats(k * nc, 3 + nc);
            const size_t xrow =
                fast.vec_type == DType::F32 ? k * 4 : ml::row_size(fast.vec_type, k);
            std::vector<unsigned char> xq(xrow * nc);
            for (int c = 0; c < nc; ++c) {
              if (fast.vec_type == DType::F32) {
                std::memcpy(xq.data() + c * xrow, x.data() + c * k, k * 4);
              } else {
                slow.from_f32(x.data() + c * k, xq.data() + c * xrow, k);
              }
            }
            // Output with a leading dimension larger than nr, as the backend's chunks have.
            const size_t ldo = nr + 3;
            std::vector<float> a(ldo * nc, -1.0f), b(ldo * nc, -1.0f);
            fast.gemm(k, w.data(), ml::row_size(t, k), xq.data(), xrow, a.data(), ldo, nr, nc);
            slow.gemm(k, w.data(), ml::row_size(t, k), xq.data(), xrow, b.data(), ldo, nr, nc);
            for (size_t i = 0; i < a.size(); ++i) {
              EXPECT_NEAR(a[i], b[i], 1e-4 * (1.0 + std::fabs(b[i])))
                  << "k=" << k << " nr=" << nr << " nc=" << nc << " i=" << i;
            }
          }
        }
      }
    }
  }
}

TEST(CpuMulMatSimd, PanelGemmMatchesScalarGemmOnRandomBlocks) {
  const std::vector<simd::Isa> isas = simd_isas_here();
  if (isas.empty()) GTEST_SKIP() << "this CPU runs only the scalar kernels";
  for (simd::Isa isa : isas) {
    SCOPED_TRACE(simd::isa_name(isa));
    int tested = 0;
    for (DType t : kWeightTypes) {
      const simd::PanelKernels* panel = simd::matmul_kernels(t, isa).panel;
      if (!panel) continue;
      ++tested;
      SCOPED_TRACE(std::string(ml::dtype_name(t)));
      const simd::MatMulKernels& slow = simd::matmul_kernels(t, simd::Isa::kScalar);
      // Rows of whole super-blocks, an odd count of 32-element blocks and an odd length
      // (panels that pair blocks or elements pad the last).
      for (int64_t k : {int64_t{256}, int64_t{768}, int64_t{96}, int64_t{97}}) {
        if (k % ml::block_size(t) != 0) continue;
        // Partial and full panels; column counts around the 4- and 8-column tiles.
        for (int nr : {1, 5, 8}) {
          for (int nc : {1, 3, 4, 9, 17}) {
            const size_t wrow = ml::row_size(t, k);
            const std::vector<unsigned char> w = random_blocks(t, k, nr, 11 + nr * 10 + nc);
            const std::vector<float> x = random_floats(k * nc, 5 + nc, 2.0f);
            // Panels without an activation format (f32) read the activations as they are.
            const bool in_place = panel->x_row_bytes(k) == 0;
            const size_t xrow = ml::row_size(slow.vec_type, k);
            const size_t prow = in_place ? k * sizeof(float) : panel->x_row_bytes(k);
            std::vector<unsigned char> xq(xrow * nc), xp(prow * nc);
            for (int c = 0; c < nc; ++c) {
              if (slow.from_f32) {
                slow.from_f32(x.data() + c * k, xq.data() + c * xrow, k);
              } else {
                std::memcpy(xq.data() + c * xrow, x.data() + c * k, xrow);
              }
              if (in_place) {
                std::memcpy(xp.data() + c * prow, x.data() + c * k, prow);
              } else {
                panel->from_f32(x.data() + c * k, xp.data() + c * prow, k);
              }
            }
            std::vector<unsigned char> packed(panel->panel_bytes(k), 0xCD);
            panel->pack(k, w.data(), wrow, nr, packed.data());
            const size_t ldo = nr + 3;
            std::vector<float> a(ldo * nc, -1.0f), b(ldo * nc, -1.0f);
            panel->gemm(k, packed.data(), xp.data(), prow, a.data(), ldo, nr, nc);
            slow.gemm(k, w.data(), wrow, xq.data(), xrow, b.data(), ldo, nr, nc);
            for (size_t i = 0; i < a.size(); ++i) {
              EXPECT_NEAR(a[i], b[i], 1e-4 * (1.0 + std::fabs(b[i])))
                  << "k=" << k << " nr=" << nr << " nc=" << nc << " i=" << i;
            }
          }
        }
      }
    }
    EXPECT_GE(tested, 5);  // F32, Q4_0, Q4_K, Q6_K, Q8_0
  }
}

// Activations that exercise the rounding edges: exact halves, ties between +max and -max,
// zeros and a block of only zeros.
std::vector<float> tricky_activations(int64_t k, uint32_t seed) {
  std::vector<float> x = random_floats(k, seed, 3.0f);
  for (int64_t i = 0; i < k; i += 7) x[i] = std::round(x[i] * 2.0f) * 0.5f;
  for (int64_t i = 0; i < std::min<int64_t>(k, 256); ++i) x[i] = 0.0f;  // a zero block
  if (k >= 512) {
    // A block whose scale is exactly 1, so x * (1/d) lands on exact halves (roundf and
    // round-to-even differ there).
    x[256] = 127.0f;
    for (int j = 1; j < 32; ++j) x[256 + j] = static_cast<float>(j - 16) + 0.5f;
    x[300] = 10.0f;  // +max then -max of the same magnitude in one super-block
    x[301] = -10.0f;
    x[600] = -12.0f;
    x[601] = 12.0f;
  }
  return x;
}

TEST(CpuMulMatSimd, ActivationQuantizersProduceTheReferenceBytes) {
  const std::vector<simd::Isa> isas = simd_isas_here();
  if (isas.empty()) GTEST_SKIP() << "this CPU runs only the scalar kernels";
  const int64_t k = 1024;
  for (simd::Isa isa : isas) {
    SCOPED_TRACE(simd::isa_name(isa));
    for (DType w : {DType::Q4_0, DType::Q4_1, DType::Q4_K}) {
      const simd::MatMulKernels& fast = simd::matmul_kernels(w, isa);
      for (uint32_t seed = 0; seed < 20; ++seed) {
        const std::vector<float> x = tricky_activations(k, seed);
        std::vector<unsigned char> a(ml::row_size(fast.vec_type, k)), b(a.size());
        fast.from_f32(x.data(), a.data(), k);
        ml::quant::quantize_row(fast.vec_type, x.data(), b.data(), k);
        ASSERT_EQ(a, b) << ml::dtype_name(fast.vec_type) << " seed " << seed;
      }
    }
  }
}

}  // namespace
}  // namespace corral::backend::cpu
