// The op harness (in the spirit of llama.cpp's test-backend-ops): every op x every dtype it
// supports x awkward shapes, computed on a backend under test and on the reference backend from
// the same seeded inputs, compared by normalized mean squared error against a per-case bound.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/simd/matmul_kernels.h"
#include "ml/backend.h"
#include "ml/graph.h"

namespace corral::testing {

// Records a case's inputs into a graph, filling each leaf from a seeded generator so that two
// builds with the same seed hold identical bytes. Owns the leaves' memory.
class CaseBuilder {
 public:
  CaseBuilder(ml::Graph& g, uint64_t seed) : graph_(g), rng_(seed) {}

  ml::Graph& graph() { return graph_; }
  std::mt19937_64& rng() { return rng_; }

  // Uniform values in [lo, hi), stored as dtype t (rounded or quantized from f32).
  ml::Tensor uniform(ml::DType t, const ml::Shape& ne, float lo = -1.0f, float hi = 1.0f);
  // Integers (I32 or I64) from a list, in order.
  ml::Tensor indices(ml::DType t, const ml::Shape& ne, const std::vector<int64_t>& values);
  // I32 values uniform in [lo, hi].
  ml::Tensor random_ints(const ml::Shape& ne, int32_t lo, int32_t hi);
  // An additive attention mask (f32 or f16): 0 or -inf with probability p_inf, except column 0
  // which is always 0 so that no row is fully masked.
  ml::Tensor mask(ml::DType t, const ml::Shape& ne, double p_inf);

 private:
  ml::Tensor leaf_from_f32(ml::DType t, const ml::Shape& ne, const std::vector<float>& values);
  ml::Tensor leaf_with_bytes(ml::DType t, const ml::Shape& ne);

  ml::Graph& graph_;
  std::mt19937_64 rng_;
  std::vector<std::unique_ptr<ml::HostBuffer>> buffers_;
};

struct OpCase {
  std::string name;  // test-name safe: letters, digits, '_'
  // Largest NMSE accepted between the backend under test and the reference (0: exact).
  double max_nmse = 1e-7;
  // Records inputs and the op under test; returns the op's node (the one compared).
  std::function<ml::Tensor(CaseBuilder&)> build;
};

// Every case, in a stable order with unique names.
std::vector<OpCase> all_op_cases();

// The backends that the harness runs every case on. New backends add an entry here.
struct BackendUnderTest {
  std::string name;
  std::function<std::unique_ptr<ml::Backend>()> make;
  // Why the backend cannot run here ("" when it can): its cases are skipped with this message
  // (the CUDA backend on a machine without a GPU).
  std::function<std::string()> unavailable = [] { return std::string(); };
  // The cases it runs (all by default).
  std::function<bool(const OpCase&)> covers = [](const OpCase&) { return true; };
};
std::vector<BackendUnderTest> backends_under_test();

// The CPU backend's kernel variants (one per simd::Isa) and whether this CPU runs each: the
// harness runs the matrix products on every one of them.
struct KernelVariant {
  backend::cpu::simd::Isa isa;
  std::string name;  // simd::isa_name
  bool runs_here = false;
};
std::vector<KernelVariant> kernel_variants();

struct CaseRun {
  std::vector<float> values;   // the compared node as f32, in ne[0]-fastest order
  bool supported = false;      // `tested` claims to support the op node
  bool ran_on_tested = false;  // the op node was computed by `tested`
};
// Builds the case from `seed` and computes it with `tested` first and `reference` as the
// fallback (tested may be null: reference only).
CaseRun run_case(const OpCase& c, ml::Backend* tested, ml::Backend& reference, uint64_t seed);

// sum((got - want)^2) / sum(want^2); infinity when a value is NaN or the sizes differ, and
// when `want` is all zeros, the plain squared error.
double nmse(std::span<const float> got, std::span<const float> want);

// Any node (plain or block dtype, any strides) as f32 values, ne[0] fastest.
std::vector<float> read_as_f32(const ml::Node& n);

// A stable seed for a case name.
uint64_t seed_for(const std::string& name);

}  // namespace corral::testing
