#include "op_harness.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "backend/cpu/cpu.h"
#include "backend/cpu/simd/matmul_kernels.h"
#include "backend/cuda/cuda.h"
#include "backend/reference/tensor_access.h"
#include "ml/fp16.h"
#include "ml/quant/quant.h"

namespace corral::testing {

using ml::DType;
using ml::Shape;
using ml::Tensor;

// ---------------------------------------------------------------------------------------------
// Inputs

ml::Tensor CaseBuilder::leaf_with_bytes(DType t, const Shape& ne) {
  const ml::Strides nb = ml::contiguous_strides(t, ne);
  const size_t bytes = std::max<size_t>(nb[3] * static_cast<size_t>(ne[3]), 1);
  buffers_.push_back(std::make_unique<ml::HostBuffer>(bytes));
  std::memset(buffers_.back()->data(), 0, bytes);
  return graph_.leaf(t, ne, buffers_.back()->data());
}

ml::Tensor CaseBuilder::leaf_from_f32(DType t, const Shape& ne, const std::vector<float>& values) {
  Tensor leaf = leaf_with_bytes(t, ne);
  const int64_t row = ne[0];
  const size_t row_bytes = ml::row_size(t, row);
  auto* out = static_cast<char*>(leaf.data());
  const int64_t rows = ne[1] * ne[2] * ne[3];
  for (int64_t r = 0; r < rows; ++r) {
    const float* in = values.data() + r * row;
    char* dst = out + r * row_bytes;
    switch (t) {
      case DType::F32:
        std::memcpy(dst, in, row_bytes);
        break;
      case DType::F16:
        for (int64_t i = 0; i < row; ++i) {
          const uint16_t h = ml::fp32_to_fp16(in[i]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      case DType::BF16:
        for (int64_t i = 0; i < row; ++i) {
          const uint16_t h = ml::fp32_to_bf16(in[i]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      default:
        ml::quant::quantize_row(t, in, dst, row);
    }
  }
  return leaf;
}

ml::Tensor CaseBuilder::uniform(DType t, const Shape& ne, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(ne[0] * ne[1] * ne[2] * ne[3]));
  for (float& x : v) x = dist(rng_);
  return leaf_from_f32(t, ne, v);
}

ml::Tensor CaseBuilder::indices(DType t, const Shape& ne, const std::vector<int64_t>& values) {
  Tensor leaf = leaf_with_bytes(t, ne);
  auto* out = static_cast<char*>(leaf.data());
  for (size_t i = 0; i < values.size(); ++i) {
    if (t == DType::I64) {
      std::memcpy(out + 8 * i, &values[i], 8);
    } else {
      const int32_t v = static_cast<int32_t>(values[i]);
      std::memcpy(out + 4 * i, &v, 4);
    }
  }
  return leaf;
}

ml::Tensor CaseBuilder::random_ints(const Shape& ne, int32_t lo, int32_t hi) {
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int64_t> v(static_cast<size_t>(ne[0] * ne[1] * ne[2] * ne[3]));
  for (int64_t& x : v) x = dist(rng_);
  return indices(DType::I32, ne, v);
}

ml::Tensor CaseBuilder::mask(DType t, const Shape& ne, double p_inf) {
  std::bernoulli_distribution masked(p_inf);
  std::vector<float> v(static_cast<size_t>(ne[0] * ne[1] * ne[2] * ne[3]));
  for (size_t i = 0; i < v.size(); ++i) {
    const bool first_column = i % static_cast<size_t>(ne[0]) == 0;
    v[i] = !first_column && masked(rng_) ? -std::numeric_limits<float>::infinity() : 0.0f;
  }
  return leaf_from_f32(t, ne, v);
}

// ---------------------------------------------------------------------------------------------
// Running and comparing

namespace {

// Forwards to the backend under test and remembers which nodes it computed, so a case can
// check that the op ran there rather than on the fallback.
class RecordingBackend final : public ml::Backend {
 public:
  explicit RecordingBackend(ml::Backend& inner) : inner_(inner) {}
  std::string_view name() const override { return inner_.name(); }
  bool supports(const ml::Graph& g, const ml::Node& n) const override {
    return inner_.supports(g, n);
  }
  std::unique_ptr<ml::Buffer> allocate(size_t bytes) override { return inner_.allocate(bytes); }
  // The inner backend recognizes its nodes by its own address in the placement.
  void prepare(const ml::Graph& g, std::span<const int> order,
               std::span<ml::Backend* const> placement, std::span<const int> outputs) override {
    inner_placement_.assign(placement.begin(), placement.end());
    for (ml::Backend*& b : inner_placement_) {
      if (b == this) b = &inner_;
    }
    inner_.prepare(g, order, inner_placement_, outputs);
  }
  void compute(const ml::Graph& g, std::span<const int> nodes) override {
    computed.insert(computed.end(), nodes.begin(), nodes.end());
    inner_.compute(g, nodes);
  }
  void synchronize() override { inner_.synchronize(); }

  std::vector<int> computed;

 private:
  ml::Backend& inner_;
  std::vector<ml::Backend*> inner_placement_;
};

}  // namespace

std::vector<float> read_as_f32(const ml::Node& n) {
  std::vector<float> out(static_cast<size_t>(n.nelements()));
  std::vector<float> row(static_cast<size_t>(n.ne[0]));
  size_t k = 0;
  backend::reference::for_each_row(n.ne, [&](int64_t i1, int64_t i2, int64_t i3) {
    if (n.dtype == DType::I64) {
      for (int64_t i0 = 0; i0 < n.ne[0]; ++i0) {
        out[k++] = static_cast<float>(backend::reference::load_index(n, i0, i1, i2, i3));
      }
      return;
    }
    backend::reference::load_row(n, i1, i2, i3, row.data());
    for (float v : row) out[k++] = v;
  });
  return out;
}

CaseRun run_case(const OpCase& c, ml::Backend* tested, ml::Backend& reference, uint64_t seed) {
  ml::Graph g;
  CaseBuilder builder(g, seed);
  const Tensor out = c.build(builder);
  CaseRun run;
  if (tested) {
    RecordingBackend recording(*tested);
    run.supported = tested->supports(g, out.node());
    ml::Executor ex({&recording, &reference});
    ex.compute(g, {out});
    run.ran_on_tested = std::find(recording.computed.begin(), recording.computed.end(), out.id()) !=
                        recording.computed.end();
    run.values = read_as_f32(out.node());
  } else {
    ml::Executor ex({&reference});
    ex.compute(g, {out});
    run.values = read_as_f32(out.node());
  }
  return run;
}

double nmse(std::span<const float> got, std::span<const float> want) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (got.size() != want.size()) return kInf;
  double err = 0.0, norm = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]) || std::isnan(want[i])) return kInf;
    if (got[i] == want[i]) {  // equal infinities included
      if (std::isfinite(want[i])) norm += double{want[i]} * double{want[i]};
      continue;
    }
    if (!std::isfinite(got[i]) || !std::isfinite(want[i])) return kInf;
    const double d = double{got[i]} - double{want[i]};
    err += d * d;
    norm += double{want[i]} * double{want[i]};
  }
  return norm > 0.0 ? err / norm : err;
}

uint64_t seed_for(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

// The CPU backend as a model's weights meet it: every leaf is constant (CpuOptions::constant),
// so the weights of matrix products are repacked into panels and run on the panel kernels.
// Leaves are only constant for one graph (the harness frees them after each case), so each
// graph gets a CPU backend of its own.
class PackedCpuBackend final : public ml::Backend {
 public:
  explicit PackedCpuBackend(backend::cpu::simd::Isa isa = backend::cpu::simd::best_isa())
      : isa_(isa), inner_(backend::cpu::make_backend({.n_threads = 2, .isa = isa})) {}
  std::string_view name() const override { return "cpu_packed"; }
  bool supports(const ml::Graph& g, const ml::Node& n) const override {
    return inner_->supports(g, n);
  }
  void prepare(const ml::Graph& g, std::span<const int> order,
               std::span<ml::Backend* const> placement, std::span<const int> outputs) override {
    std::vector<std::span<const std::byte>> leaves;
    for (int id = 0; id < g.size(); ++id) {
      const ml::Node& n = g.node(id);
      if (n.kind() == ml::OpKind::kLeaf && n.data) {
        leaves.emplace_back(static_cast<const std::byte*>(n.data), n.nbytes());
      }
    }
    inner_ =
        backend::cpu::make_backend({.n_threads = 2, .constant = std::move(leaves), .isa = isa_});
    std::vector<ml::Backend*> mine(placement.begin(), placement.end());
    for (ml::Backend*& b : mine) {
      if (b == this) b = inner_.get();
    }
    inner_->prepare(g, order, mine, outputs);
  }
  void compute(const ml::Graph& g, std::span<const int> nodes) override {
    inner_->compute(g, nodes);
  }

 private:
  backend::cpu::simd::Isa isa_;
  // Replaced by each prepare(); until the first, it answers supports().
  std::unique_ptr<ml::Backend> inner_;
};

bool is_mul_mat_case(const OpCase& c) { return c.name.starts_with("mul_mat_"); }

// A mul_mat case whose weights have panel kernels on the set: the packed backend repacks them.
bool is_packable_mul_mat_case(const OpCase& c, backend::cpu::simd::Isa isa) {
  for (DType t : ml::kAllDTypes) {
    const std::string prefix = "mul_mat_" + std::string(ml::dtype_name(t)) + "_k";
    if (c.name.starts_with(prefix)) {
      return backend::cpu::simd::matmul_kernels(t, isa).panel != nullptr;
    }
  }
  return false;
}

}  // namespace

std::vector<KernelVariant> kernel_variants() {
  namespace simd = backend::cpu::simd;
  std::vector<KernelVariant> out;
  for (simd::Isa isa : simd::kAllIsas) {
    out.push_back({isa, simd::isa_name(isa), simd::isa_supported(isa)});
  }
  return out;
}

std::vector<BackendUnderTest> backends_under_test() {
  std::vector<BackendUnderTest> out;
  out.push_back({"cpu", [] { return backend::cpu::make_backend(); }});
  // Matrix products whose weights the CPU backend repacks (the dtypes with panel kernels).
  out.push_back({"cpu_packed", [] { return std::make_unique<PackedCpuBackend>(); },
                 [] { return std::string(); },
                 [](const OpCase& c) {
                   return is_packable_mul_mat_case(c, backend::cpu::simd::best_isa());
                 }});
  // The backend on each instruction set (CpuOptions::isa), its products read in place and
  // repacked; a set this CPU lacks has its cases listed and skipped with the reason. Every op
  // runs on scalar (its vector primitives are scalar too); the wider sets differ from "cpu"
  // only in their matmul kernels (the vector primitives have no AVX-512 versions).
  for (const KernelVariant& v : kernel_variants()) {
    const std::string why = v.runs_here ? "" : "this CPU does not run the " + v.name + " kernels";
    auto unavailable = [why] { return why; };
    const backend::cpu::simd::Isa isa = v.isa;
    auto covers = isa == backend::cpu::simd::Isa::kScalar
                      ? std::function<bool(const OpCase&)>([](const OpCase&) { return true; })
                      : std::function<bool(const OpCase&)>(is_mul_mat_case);
    out.push_back({"cpu_" + v.name,
                   [isa] { return backend::cpu::make_backend({.n_threads = 2, .isa = isa}); },
                   unavailable, covers});
    out.push_back({"cpu_packed_" + v.name,
                   [isa] { return std::make_unique<PackedCpuBackend>(isa); }, unavailable,
                   [isa](const OpCase& c) { return is_packable_mul_mat_case(c, isa); }});
  }
  // The CUDA cases are listed whenever corral is built with CUDA, and skip without a device.
  if (backend::cuda::built()) {
    out.push_back({"cuda",
                   []() -> std::unique_ptr<ml::Backend> {
                     if (backend::cuda::devices().empty()) return nullptr;
                     return backend::cuda::make_backend();
                   },
                   [] { return backend::cuda::unavailable_reason(); }});
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The cases

namespace {

// Bounds, with why:
// Data movement (copies, gathers, f16/bf16 round-to-nearest-even) is exact.
constexpr double kExact = 0.0;
// Float arithmetic in another order (SIMD lanes, float vs double accumulation): ggml's default.
constexpr double kFloat = 1e-7;
// Ops whose fast kernels may use approximations: an f16 lookup table for GELU, f32 theta
// recurrences for RoPE at positions up to 4096 (about 1e-4 rad of absolute rounding either way).
constexpr double kApprox = 1e-6;
// A rounding tie broken the other way by a SIMD quantizer moves one value by one step.
constexpr double kQuantize = 1e-6;
// Products whose fast kernels may round an operand to a narrower type first, as ggml's CPU and
// CUDA backends do: activations to f16 next to f16 weights (about 2^-11 relative per value),
// to bf16 next to bf16 weights (2^-8), and to q8_0/q8_K next to quantized weights (ggml's
// test-backend-ops bound, which also covers f16 K/V attention accumulated in f16).
constexpr double kF16Operand = 1e-6;
constexpr double kBf16Operand = 1e-5;
constexpr double kLowPrecision = 5e-4;
// conv2d with an f16 kernel: ggml's path rounds the image to f16 in im2col and sums f16
// products in a GEMM with up to KW * KH * Cin = 588 terms here.
constexpr double kF16Conv = 1e-5;

const DType kPlain[] = {DType::F32, DType::F16, DType::BF16};
const DType kBlock32[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0};
const DType kBlock256[] = {DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
// Row lengths one below, at and one above SIMD widths 8/16/32 and the 256-element super-block.
const int64_t kWidths[] = {7, 8, 9, 15, 16, 17, 31, 32, 33, 255, 256, 257};

std::string dt(DType t) { return std::string(ml::dtype_name(t)); }
std::string num(int64_t v) { return std::to_string(v); }

// Row lengths a dtype allows: the awkward widths for plain types; 1, 2, 3 and 9 blocks of 32, or
// 1, 2 and 3 super-blocks of 256, for block formats.
std::vector<int64_t> widths_for(DType t) {
  if (!ml::is_quantized(t)) return {std::begin(kWidths), std::end(kWidths)};
  const int64_t b = ml::block_size(t);
  if (b == 256) return {256, 512, 768};
  return {b, 2 * b, 3 * b, 9 * b};
}

// An input of logical shape ne whose storage is transposed (dims 0 and 1 swapped), so the op
// sees nb[0] larger than the element size.
Tensor transposed_input(CaseBuilder& b, DType t, const Shape& ne, float lo = -1, float hi = 1) {
  Tensor leaf = b.uniform(t, {ne[1], ne[0], ne[2], ne[3]}, lo, hi);
  return ml::transpose(leaf);
}

// An input of logical shape ne stored with dims 1 and 2 swapped (rows contiguous, rows not
// in order), as a permuted attention head view is.
Tensor permuted_input(CaseBuilder& b, DType t, const Shape& ne, float lo = -1, float hi = 1) {
  Tensor leaf = b.uniform(t, {ne[0], ne[2], ne[1], ne[3]}, lo, hi);
  return ml::permute(leaf, 0, 2, 1, 3);
}

void add_unary_cases(std::vector<OpCase>& cases) {
  struct Unary {
    std::string name;
    double nmse;
    std::function<Tensor(Tensor)> op;
  };
  const std::vector<Unary> ops = {
      {"silu", kFloat, [](Tensor a) { return ml::silu(a); }},
      {"gelu_tanh", kApprox, [](Tensor a) { return ml::gelu(a, ml::op::GeluForm::kTanh); }},
      {"gelu_erf", kApprox, [](Tensor a) { return ml::gelu(a, ml::op::GeluForm::kErf); }},
      {"gelu_quick", kFloat, [](Tensor a) { return ml::gelu_quick(a); }},
      {"scale", kFloat, [](Tensor a) { return ml::scale(a, 0.37f, -0.5f); }},
      {"rms_norm", kFloat, [](Tensor a) { return ml::rms_norm(a, 1e-6f); }},
      {"softmax", kFloat, [](Tensor a) { return ml::softmax(a, {}, 0.7f); }},
      {"sum_rows", kFloat, [](Tensor a) { return ml::sum_rows(a); }},
      {"mean", kFloat, [](Tensor a) { return ml::mean(a); }},
      {"cont", kExact, [](Tensor a) { return ml::cont(a); }},
  };
  for (const Unary& u : ops) {
    for (int64_t w : kWidths) {
      const Shape ne{w, 3, 2, 2};
      // Values in [-4, 4] reach the curved parts of the activations.
      cases.push_back({u.name + "_f32_w" + num(w), u.nmse,
                       [=](CaseBuilder& b) { return u.op(b.uniform(DType::F32, ne, -4, 4)); }});
    }
    for (int64_t w : {7, 32, 33}) {
      const Shape ne{w, 5, 3, 1};
      cases.push_back({u.name + "_f32_w" + num(w) + "_transposed", u.nmse, [=](CaseBuilder& b) {
                         return u.op(transposed_input(b, DType::F32, ne, -4, 4));
                       }});
      cases.push_back({u.name + "_f32_w" + num(w) + "_permuted", u.nmse, [=](CaseBuilder& b) {
                         return u.op(permuted_input(b, DType::F32, ne, -4, 4));
                       }});
    }
  }
  // Large inputs: exp overflow and saturation paths of the activations.
  for (const Unary& u : ops) {
    if (u.name == "cont" || u.name == "softmax") continue;
    cases.push_back({u.name + "_f32_w64_large", u.nmse, [=](CaseBuilder& b) {
                       return u.op(b.uniform(DType::F32, {64, 4, 1, 1}, -30, 30));
                     }});
  }
  for (int64_t w : kWidths) {
    cases.push_back({"argmax_f32_w" + num(w), kExact, [=](CaseBuilder& b) {
                       return ml::argmax(b.uniform(DType::F32, {w, 9, 1, 1}));
                     }});
  }
  cases.push_back({"argmax_f32_w33_transposed", kExact, [](CaseBuilder& b) {
                     return ml::argmax(transposed_input(b, DType::F32, {33, 9, 1, 1}));
                   }});
}

void add_norm_cases(std::vector<OpCase>& cases) {
  for (int64_t w : kWidths) {
    const Shape ne{w, 3, 2, 1};
    cases.push_back({"layer_norm_plain_w" + num(w), kFloat, [=](CaseBuilder& b) {
                       return ml::layer_norm(b.uniform(DType::F32, ne, -3, 5), {}, {}, 1e-5f);
                     }});
    cases.push_back({"layer_norm_weight_w" + num(w), kFloat, [=](CaseBuilder& b) {
                       Tensor x = b.uniform(DType::F32, ne, -3, 5);
                       return ml::layer_norm(x, b.uniform(DType::F32, {w, 1, 1, 1}), {}, 1e-5f);
                     }});
    cases.push_back({"layer_norm_weight_bias_w" + num(w), kFloat, [=](CaseBuilder& b) {
                       Tensor x = b.uniform(DType::F32, ne, -3, 5);
                       Tensor wt = b.uniform(DType::F32, {w, 1, 1, 1});
                       return ml::layer_norm(x, wt, b.uniform(DType::F32, {w, 1, 1, 1}), 1e-5f);
                     }});
  }
  cases.push_back({"layer_norm_weight_bias_w33_transposed", kFloat, [](CaseBuilder& b) {
                     Tensor x = transposed_input(b, DType::F32, {33, 6, 1, 1}, -3, 5);
                     Tensor wt = b.uniform(DType::F32, {33, 1, 1, 1});
                     return ml::layer_norm(x, wt, b.uniform(DType::F32, {33, 1, 1, 1}), 1e-5f);
                   }});
}

void add_softmax_cases(std::vector<OpCase>& cases) {
  for (DType mt : {DType::F32, DType::F16}) {
    for (int64_t w : kWidths) {
      // Mask rows beyond ne1 (the mask is padded, as KV-cache masks are) and broadcast over
      // ne2/ne3 (heads).
      cases.push_back({"softmax_mask_" + dt(mt) + "_w" + num(w), kFloat, [=](CaseBuilder& b) {
                         Tensor x = b.uniform(DType::F32, {w, 5, 4, 2}, -4, 4);
                         return ml::softmax(x, b.mask(mt, {w, 8, 1, 1}, 0.3), 0.125f);
                       }});
    }
  }
  cases.push_back({"softmax_mask_f16_w33_permuted", kFloat, [](CaseBuilder& b) {
                     Tensor x = permuted_input(b, DType::F32, {33, 5, 4, 1}, -4, 4);
                     return ml::softmax(x, b.mask(DType::F16, {33, 5, 1, 1}, 0.3), 1.0f);
                   }});
}

void add_binary_cases(std::vector<OpCase>& cases) {
  struct Binary {
    std::string name;
    std::function<Tensor(Tensor, Tensor)> op;
    float lo, hi;  // range of the second operand (div stays away from zero)
  };
  const std::vector<Binary> ops = {
      {"add", [](Tensor a, Tensor b) { return ml::add(a, b); }, -1, 1},
      {"sub", [](Tensor a, Tensor b) { return ml::sub(a, b); }, -1, 1},
      {"mul", [](Tensor a, Tensor b) { return ml::mul(a, b); }, -1, 1},
      {"div", [](Tensor a, Tensor b) { return ml::div(a, b); }, 0.5f, 2},
  };
  for (const Binary& o : ops) {
    for (int64_t w : kWidths) {
      cases.push_back({o.name + "_w" + num(w), kFloat, [=](CaseBuilder& b) {
                         Tensor x = b.uniform(DType::F32, {w, 3, 2, 2});
                         return o.op(x, b.uniform(DType::F32, {w, 3, 2, 2}, o.lo, o.hi));
                       }});
    }
    // Broadcasts: a row (a bias), a row per ne1, a scalar per row, repeated blocks.
    const std::vector<std::pair<std::string, Shape>> bcasts = {{"row", {33, 1, 1, 1}},
                                                               {"rows", {33, 3, 1, 1}},
                                                               {"col", {1, 3, 2, 1}},
                                                               {"tile", {11, 1, 2, 1}},
                                                               {"scalar", {1, 1, 1, 1}}};
    for (const auto& bcast : bcasts) {
      const auto& label = bcast.first;  // named copies: clang 14 cannot capture bindings
      const auto bshape = bcast.second;
      cases.push_back({o.name + "_w33_bcast_" + label, kFloat, [=](CaseBuilder& b) {
                         Tensor x = b.uniform(DType::F32, {33, 3, 2, 2});
                         return o.op(x, b.uniform(DType::F32, bshape, o.lo, o.hi));
                       }});
    }
    cases.push_back({o.name + "_w33_transposed", kFloat, [=](CaseBuilder& b) {
                       Tensor x = transposed_input(b, DType::F32, {33, 6, 2, 1});
                       return o.op(x, transposed_input(b, DType::F32, {33, 6, 2, 1}, o.lo, o.hi));
                     }});
    cases.push_back({o.name + "_w32_permuted_bcast", kFloat, [=](CaseBuilder& b) {
                       Tensor x = permuted_input(b, DType::F32, {32, 4, 3, 1});
                       return o.op(x, b.uniform(DType::F32, {32, 1, 3, 1}, o.lo, o.hi));
                     }});
  }
  for (int64_t w : kWidths) {
    cases.push_back({"swiglu_w" + num(w), kFloat, [=](CaseBuilder& b) {
                       Tensor gate = b.uniform(DType::F32, {w, 3, 2, 1}, -6, 6);
                       return ml::swiglu(gate, b.uniform(DType::F32, {w, 3, 2, 1}));
                     }});
  }
  cases.push_back({"swiglu_w33_transposed", kFloat, [](CaseBuilder& b) {
                     Tensor gate = transposed_input(b, DType::F32, {33, 5, 1, 1}, -6, 6);
                     return ml::swiglu(gate, permuted_input(b, DType::F32, {33, 5, 1, 1}));
                   }});
}

void add_copy_cases(std::vector<OpCase>& cases) {
  for (DType from : kPlain) {
    for (DType to : kPlain) {
      for (int64_t w : {7, 8, 9, 16, 17, 33, 256, 257}) {
        cases.push_back(
            {"cpy_" + dt(from) + "_" + dt(to) + "_w" + num(w), kExact, [=](CaseBuilder& b) {
               return ml::cast(b.uniform(from, {w, 3, 2, 1}, -70000, 70000), to);
             }});
      }
      cases.push_back(
          {"cpy_" + dt(from) + "_" + dt(to) + "_w17_transposed", kExact, [=](CaseBuilder& b) {
             return ml::cast(transposed_input(b, from, {17, 5, 2, 1}), to);
           }});
    }
    if (from == DType::F32) continue;  // the unary sweep covers f32
    cases.push_back({"cont_" + dt(from) + "_w33_transposed", kExact, [=](CaseBuilder& b) {
                       return ml::cont(transposed_input(b, from, {33, 6, 2, 1}));
                     }});
  }
  for (DType to : {DType::Q8_0, DType::Q4_0}) {
    for (int64_t w : {32, 64, 96, 288}) {
      cases.push_back({"cpy_f32_" + dt(to) + "_w" + num(w), kQuantize, [=](CaseBuilder& b) {
                         return ml::cast(b.uniform(DType::F32, {w, 3, 2, 1}), to);
                       }});
    }
    cases.push_back({"cpy_f32_" + dt(to) + "_w64_transposed", kQuantize, [=](CaseBuilder& b) {
                       return ml::cast(transposed_input(b, DType::F32, {64, 5, 1, 1}), to);
                     }});
  }
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const int64_t w = ml::block_size(t) * 2;
    cases.push_back({"cont_" + dt(t) + "_w" + num(w) + "_permuted", kExact, [=](CaseBuilder& b) {
                       return ml::cont(permuted_input(b, t, {w, 3, 4, 1}));
                     }});
  }
}

void add_get_rows_cases(std::vector<OpCase>& cases) {
  std::vector<DType> tables(std::begin(kPlain), std::end(kPlain));
  tables.insert(tables.end(), std::begin(kBlock32), std::end(kBlock32));
  tables.insert(tables.end(), std::begin(kBlock256), std::end(kBlock256));
  for (DType t : tables) {
    std::vector<int64_t> ws =
        ml::is_quantized(t) ? widths_for(t) : std::vector<int64_t>{7, 32, 33, 257};
    for (int64_t w : ws) {
      cases.push_back({"get_rows_" + dt(t) + "_w" + num(w), kExact, [=](CaseBuilder& b) {
                         Tensor table = b.uniform(t, {w, 10, 1, 1});
                         return ml::get_rows(table, b.random_ints({7, 1, 1, 1}, 0, 9));
                       }});
    }
    const int64_t w = ws.front();
    cases.push_back({"get_rows_" + dt(t) + "_w" + num(w) + "_batched", kExact, [=](CaseBuilder& b) {
                       Tensor table = b.uniform(t, {w, 6, 3, 2});
                       return ml::get_rows(table, b.random_ints({4, 3, 2, 1}, 0, 5));
                     }});
  }
}

void add_mul_mat_cases(std::vector<OpCase>& cases) {
  std::vector<DType> weights(std::begin(kPlain), std::end(kPlain));
  weights.insert(weights.end(), std::begin(kBlock32), std::end(kBlock32));
  weights.insert(weights.end(), std::begin(kBlock256), std::end(kBlock256));
  for (DType t : weights) {
    const double bound = t == DType::F32    ? kFloat
                         : t == DType::F16  ? kF16Operand
                         : t == DType::BF16 ? kBf16Operand
                                            : kLowPrecision;
    for (int64_t k : widths_for(t)) {
      // n = 1 is the decode (matrix-vector) path; 7 and 33 reach the tiled GEMM edges.
      for (int64_t n : {1, 7, 33}) {
        const int64_t m = 17;
        cases.push_back({"mul_mat_" + dt(t) + "_k" + num(k) + "_m" + num(m) + "_n" + num(n), bound,
                         [=](CaseBuilder& b) {
                           Tensor w = b.uniform(t, {k, m, 1, 1});
                           return ml::mul_mat(w, b.uniform(DType::F32, {k, n, 1, 1}));
                         }});
      }
    }
    const int64_t k = widths_for(t)[1];
    for (int64_t m : {1, 16, 64}) {
      cases.push_back(
          {"mul_mat_" + dt(t) + "_k" + num(k) + "_m" + num(m) + "_n16", bound, [=](CaseBuilder& b) {
             Tensor w = b.uniform(t, {k, m, 1, 1});
             return ml::mul_mat(w, b.uniform(DType::F32, {k, 16, 1, 1}));
           }});
    }
    // A prefill-sized product whose m and n are not multiples of any tile size.
    cases.push_back({"mul_mat_" + dt(t) + "_k" + num(k) + "_m40_n70", bound, [=](CaseBuilder& b) {
                       Tensor w = b.uniform(t, {k, 40, 1, 1});
                       return ml::mul_mat(w, b.uniform(DType::F32, {k, 70, 1, 1}));
                     }});
    // Batched weights broadcast over activation heads: ratios 1, 2 (GQA), 4 and over dim 3.
    const std::vector<std::pair<Shape, Shape>> batches = {
        {{1, 1, 2, 3}, {1, 1, 2, 3}},  // no broadcast, several batch dims
        {{1, 1, 4, 1}, {1, 1, 8, 1}},  // GQA 2
        {{1, 1, 2, 1}, {1, 1, 8, 2}},  // GQA 4 and dim-3 repeat
        {{1, 1, 1, 1}, {1, 1, 3, 2}},  // one weight for all
    };
    for (const auto& batch : batches) {
      const auto wb = batch.first;  // named copies: clang 14 cannot capture bindings
      const auto xb = batch.second;
      for (int64_t n : {1, 5}) {
        const std::string label = "_b" + num(wb[2]) + "x" + num(wb[3]) + "_B" + num(xb[2]) + "x" +
                                  num(xb[3]) + "_n" + num(n);
        cases.push_back(
            {"mul_mat_" + dt(t) + "_k" + num(k) + "_m9" + label, bound, [=](CaseBuilder& b) {
               Tensor w = b.uniform(t, {k, 9, wb[2], wb[3]});
               return ml::mul_mat(w, b.uniform(DType::F32, {k, n, xb[2], xb[3]}));
             }});
      }
    }
    // Non-contiguous operands: permuted activations (as attention's K^T Q sees them) and, for
    // quantized and plain weights alike, permuted weight heads.
    cases.push_back(
        {"mul_mat_" + dt(t) + "_k" + num(k) + "_m9_n5_x_permuted", bound, [=](CaseBuilder& b) {
           Tensor w = b.uniform(t, {k, 9, 2, 1});
           return ml::mul_mat(w, permuted_input(b, DType::F32, {k, 5, 4, 1}));
         }});
    cases.push_back(
        {"mul_mat_" + dt(t) + "_k" + num(k) + "_m9_n5_w_permuted", bound, [=](CaseBuilder& b) {
           Tensor w = permuted_input(b, t, {k, 9, 2, 1});
           return ml::mul_mat(w, b.uniform(DType::F32, {k, 5, 4, 1}));
         }});
  }
}

void add_rope_cases(std::vector<OpCase>& cases) {
  using ml::op::Rope;
  using ml::op::RopeMode;
  struct Variant {
    std::string name;
    int64_t head_dim;
    Rope p;
    bool freq_factors = false;
  };
  auto make = [](RopeMode mode, int n_dims) {
    Rope p;
    p.mode = mode;
    p.n_dims = n_dims;
    p.n_ctx_orig = 4096;
    return p;
  };
  std::vector<Variant> variants;
  for (RopeMode mode : {RopeMode::kNormal, RopeMode::kNeox}) {
    const std::string m = mode == RopeMode::kNormal ? "normal" : "neox";
    for (int64_t hd : {6, 64, 128}) {
      variants.push_back({m + "_hd" + num(hd), hd, make(mode, static_cast<int>(hd))});
    }
    variants.push_back({m + "_hd64_partial32", 64, make(mode, 32)});
    Rope linear = make(mode, 64);
    linear.freq_scale = 0.25f;
    linear.freq_base = 500000.0f;
    variants.push_back({m + "_hd64_linear", 64, linear});
    variants.push_back({m + "_hd64_freq_factors", 64, make(mode, 64), true});
    Rope yarn = make(mode, 64);
    yarn.freq_scale = 0.25f;
    yarn.ext_factor = 1.0f;
    yarn.attn_factor = 0.9f;
    variants.push_back({m + "_hd64_yarn", 64, yarn});
    Rope yarn_partial = yarn;
    yarn_partial.n_dims = 32;
    yarn_partial.ext_factor = 0.5f;
    variants.push_back({m + "_hd64_yarn_partial32", 64, yarn_partial, true});
  }
  Rope mrope = make(RopeMode::kMRope, 128);
  mrope.sections = {16, 24, 24, 0};  // qwen2-vl
  mrope.freq_base = 1000000.0f;
  variants.push_back({"mrope_hd128", 128, mrope});
  Rope mrope_partial = mrope;
  mrope_partial.n_dims = 64;
  mrope_partial.sections = {8, 12, 12, 0};
  variants.push_back({"mrope_hd128_partial64_yarn", 128, mrope_partial});
  variants.back().p.ext_factor = 1.0f;
  variants.back().p.freq_scale = 0.5f;
  Rope vision = make(RopeMode::kVision, 40);
  vision.sections = {10, 10, 0, 0};
  variants.push_back({"vision_hd80", 80, vision});

  for (const Variant& v : variants) {
    const int64_t hd = v.head_dim;
    const bool multi = v.p.mode == RopeMode::kMRope || v.p.mode == RopeMode::kVision;
    const int32_t max_pos = multi ? 64 : 4096;
    for (int layout = 0; layout < 2; ++layout) {
      const int64_t n_head = 3, n_tokens = 5;
      cases.push_back(
          {"rope_" + v.name + (layout ? "_permuted" : ""), kApprox, [=](CaseBuilder& b) {
             const Shape ne{hd, n_head, n_tokens, 1};
             Tensor x = layout ? permuted_input(b, DType::F32, ne) : b.uniform(DType::F32, ne);
             Tensor pos = b.random_ints({n_tokens * (multi ? 4 : 1), 1, 1, 1}, 0, max_pos);
             Tensor ff;
             if (v.freq_factors) {
               ff = b.uniform(DType::F32, {v.p.n_dims / 2, 1, 1, 1}, 1.0f, 8.0f);
             }
             return ml::rope(x, pos, ff, v.p);
           }});
    }
  }
}

void add_concat_cases(std::vector<OpCase>& cases) {
  for (DType t : {DType::F32, DType::F16}) {
    for (int dim = 0; dim < 4; ++dim) {
      cases.push_back({"concat_" + dt(t) + "_dim" + num(dim), kExact, [=](CaseBuilder& b) {
                         Shape na{9, 4, 3, 2}, nb{9, 4, 3, 2};
                         nb[dim] = 5;
                         return ml::concat(b.uniform(t, na), b.uniform(t, nb), dim);
                       }});
    }
    cases.push_back({"concat_" + dt(t) + "_dim1_transposed", kExact, [=](CaseBuilder& b) {
                       Tensor a = transposed_input(b, t, {17, 4, 2, 1});
                       return ml::concat(a, permuted_input(b, t, {17, 3, 2, 1}), 1);
                     }});
  }
}

void add_set_rows_cases(std::vector<OpCase>& cases) {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    const bool q = ml::is_quantized(t);
    const std::vector<int64_t> ws =
        q ? std::vector<int64_t>{32, 64, 288} : std::vector<int64_t>{7, 8, 9, 32, 33, 257};
    for (DType it : {DType::I32, DType::I64}) {
      for (int64_t w : ws) {
        cases.push_back({"set_rows_" + dt(t) + "_" + dt(it) + "_w" + num(w), q ? kQuantize : kExact,
                         [=](CaseBuilder& b) {
                           const int64_t n_rows = 10, n = 4, b2 = 3, b3 = 2;
                           Tensor dst = b.uniform(t, {w, n_rows, b2, b3});
                           Tensor rows = b.uniform(DType::F32, {w, n, b2, b3});
                           // Distinct targets per (b2, b3), so the result does not depend on
                           // the order rows are written in.
                           std::vector<int64_t> ids;
                           for (int64_t s = 0; s < b2 * b3; ++s) {
                             std::vector<int64_t> perm(n_rows);
                             std::iota(perm.begin(), perm.end(), 0);
                             std::shuffle(perm.begin(), perm.end(), b.rng());
                             ids.insert(ids.end(), perm.begin(), perm.begin() + n);
                           }
                           return ml::set_rows(dst, rows, b.indices(it, {n, b2, b3, 1}, ids));
                         }});
      }
    }
    const int64_t w = ws[1];
    cases.push_back(
        {"set_rows_" + dt(t) + "_i32_w" + num(w) + "_rows_transposed", q ? kQuantize : kExact,
         [=](CaseBuilder& b) {
           Tensor dst = b.uniform(t, {w, 8, 1, 1});
           Tensor rows = transposed_input(b, DType::F32, {w, 3, 1, 1});
           return ml::set_rows(dst, rows, b.indices(DType::I32, {3, 1, 1, 1}, {6, 0, 3}));
         }});
  }
}

void add_flash_attn_cases(std::vector<OpCase>& cases) {
  struct Heads {
    int64_t n_head, n_head_kv;
  };
  for (DType kv : {DType::F32, DType::F16}) {
    const double bound = kv == DType::F32 ? kFloat : kLowPrecision;
    for (int64_t hd : {40, 64, 128}) {
      for (Heads h : {Heads{4, 4}, Heads{8, 2}, Heads{6, 1}}) {
        for (int64_t n_tokens : {1, 7}) {
          for (int64_t n_kv : {7, 33, 256}) {
            for (int variant = 0; variant < 3; ++variant) {
              // 0: no mask; 1: f16 mask (KV-cache padding); 2: causal with an f32 mask.
              if (n_kv < n_tokens && variant == 2) continue;
              if (hd != 64 && n_kv == 256) continue;  // keeps the sweep small
              const std::string label = variant == 0   ? "nomask"
                                        : variant == 1 ? "mask_f16"
                                                       : "causal_mask_f32";
              cases.push_back({"flash_attn_" + dt(kv) + "_hd" + num(hd) + "_h" + num(h.n_head) +
                                   "_kv" + num(h.n_head_kv) + "_t" + num(n_tokens) + "_nkv" +
                                   num(n_kv) + "_" + label,
                               bound, [=](CaseBuilder& b) {
                                 Tensor q = b.uniform(DType::F32, {hd, n_tokens, h.n_head, 1});
                                 Tensor k = b.uniform(kv, {hd, n_kv, h.n_head_kv, 1});
                                 Tensor v = b.uniform(kv, {hd, n_kv, h.n_head_kv, 1});
                                 Tensor mask;
                                 if (variant == 1)
                                   mask = b.mask(DType::F16, {n_kv, n_tokens + 3, 1, 1}, 0.2);
                                 if (variant == 2)
                                   mask = b.mask(DType::F32, {n_kv, n_tokens, 1, 1}, 0.1);
                                 const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
                                 return ml::flash_attn(q, k, v, mask, scale, variant == 2);
                               }});
            }
          }
        }
      }
    }
    // A prefill-sized block of queries (tiled kernels' edges).
    cases.push_back(
        {"flash_attn_" + dt(kv) + "_hd64_h4_kv2_t37_nkv70_causal_mask_f16", bound,
         [=](CaseBuilder& b) {
           Tensor q = b.uniform(DType::F32, {64, 37, 4, 1});
           Tensor k = b.uniform(kv, {64, 70, 2, 1});
           Tensor v = b.uniform(kv, {64, 70, 2, 1});
           return ml::flash_attn(q, k, v, b.mask(DType::F16, {70, 40, 1, 1}, 0.1), 0.125f, true);
         }});
    // Permuted Q/K/V views ([head_dim, n_head, n_tokens] storage, as projections produce),
    // a value head size different from the key's, and two sequences in dim 3.
    cases.push_back(
        {"flash_attn_" + dt(kv) + "_hd64_h8_kv2_t5_nkv20_permuted", bound, [=](CaseBuilder& b) {
           Tensor q = permuted_input(b, DType::F32, {64, 5, 8, 1});
           Tensor k = permuted_input(b, kv, {64, 20, 2, 1});
           Tensor v = permuted_input(b, kv, {64, 20, 2, 1});
           return ml::flash_attn(q, k, v, b.mask(DType::F16, {20, 5, 1, 1}, 0.2), 0.125f, true);
         }});
    cases.push_back(
        {"flash_attn_" + dt(kv) + "_hd64_dv32_h4_kv4_t3_nkv9", bound, [=](CaseBuilder& b) {
           Tensor q = b.uniform(DType::F32, {64, 3, 4, 1});
           Tensor k = b.uniform(kv, {64, 9, 4, 1});
           Tensor v = b.uniform(kv, {32, 9, 4, 1});
           return ml::flash_attn(q, k, v, {}, 0.125f, false);
         }});
    cases.push_back(
        {"flash_attn_" + dt(kv) + "_hd64_h4_kv2_t3_nkv9_b3x2", bound, [=](CaseBuilder& b) {
           Tensor q = b.uniform(DType::F32, {64, 3, 4, 2});
           Tensor k = b.uniform(kv, {64, 9, 2, 2});
           Tensor v = b.uniform(kv, {64, 9, 2, 2});
           return ml::flash_attn(q, k, v, b.mask(DType::F16, {9, 3, 1, 1}, 0.2), 0.125f, true);
         }});
  }
}

void add_conv_cases(std::vector<OpCase>& cases) {
  struct Geometry {
    std::string name;
    Shape kernel, image;
    int s0, s1, p0, p1, d0, d1;
  };
  const std::vector<Geometry> geoms = {
      {"k3_s1_p0", {3, 3, 2, 4}, {9, 7, 2, 2}, 1, 1, 0, 0, 1, 1},
      {"k3_s1_p1", {3, 3, 2, 4}, {9, 7, 2, 1}, 1, 1, 1, 1, 1, 1},
      {"k5x3_s2x1_p2x1", {5, 3, 3, 8}, {17, 13, 3, 1}, 2, 1, 2, 1, 1, 1},
      {"k3_s1_d2", {3, 3, 2, 3}, {11, 10, 2, 1}, 1, 1, 1, 1, 2, 2},
      {"k14_s14_patch", {14, 14, 3, 5}, {28, 42, 3, 1}, 14, 14, 0, 0, 1, 1},
  };
  for (const Geometry& gm : geoms) {
    for (DType kt : {DType::F32, DType::F16}) {
      const ml::op::Conv2D p{gm.s0, gm.s1, gm.p0, gm.p1, gm.d0, gm.d1};
      cases.push_back({"conv2d_" + dt(kt) + "_" + gm.name, kt == DType::F32 ? kFloat : kF16Conv,
                       [=](CaseBuilder& b) {
                         Tensor kernel = b.uniform(kt, gm.kernel);
                         return ml::conv2d(kernel, b.uniform(DType::F32, gm.image), p);
                       }});
    }
    for (DType out : {DType::F32, DType::F16}) {
      const ml::op::Im2Col p{gm.s0, gm.s1, gm.p0, gm.p1, gm.d0, gm.d1};
      cases.push_back({"im2col_" + dt(out) + "_" + gm.name, kExact, [=](CaseBuilder& b) {
                         Tensor kernel = b.uniform(DType::F16, gm.kernel);
                         return ml::im2col(kernel, b.uniform(DType::F32, gm.image), p, out);
                       }});
    }
  }
  cases.push_back({"conv2d_f32_k3_s1_p1_image_transposed", kFloat, [](CaseBuilder& b) {
                     Tensor kernel = b.uniform(DType::F32, {3, 3, 2, 4});
                     return ml::conv2d(kernel, transposed_input(b, DType::F32, {9, 7, 2, 1}),
                                       ml::op::Conv2D{1, 1, 1, 1, 1, 1});
                   }});
}

}  // namespace

std::vector<OpCase> all_op_cases() {
  std::vector<OpCase> cases;
  add_unary_cases(cases);
  add_norm_cases(cases);
  add_softmax_cases(cases);
  add_binary_cases(cases);
  add_copy_cases(cases);
  add_get_rows_cases(cases);
  add_mul_mat_cases(cases);
  add_rope_cases(cases);
  add_concat_cases(cases);
  add_set_rows_cases(cases);
  add_flash_attn_cases(cases);
  add_conv_cases(cases);
  return cases;
}

}  // namespace corral::testing
