// Shared by the model tests: loading fixtures, running batches on a chosen backend, and the
// greedy loop.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/cpu.h"
#include "backend/cuda/cuda.h"
#include "backend/reference/reference.h"
#include "ml/backend.h"
#include "model/model.h"
#include "testdata.h"

namespace corral::model::testing {

// The backends the model tests run on: "cuda" too when corral is built with it (its tests skip
// without a device, see OnBackend).
inline std::vector<std::string> backend_names() {
  std::vector<std::string> names = {"cpu", "reference"};
  if (backend::cuda::built()) names.push_back("cuda");
  return names;
}

// Why a backend cannot run here ("" when it can).
inline std::string unavailable(const std::string& name) {
  if (name != "cuda" || !backend::cuda::devices().empty()) return "";
  return backend::cuda::unavailable_reason();
}

inline std::unique_ptr<ml::Backend> make_backend(const std::string& name) {
  if (name == "reference") return backend::reference::make_backend();
  if (name == "cuda") return backend::cuda::make_backend();
  // One thread: the test machine is shared, and the kernels' threading has tests of its own.
  return backend::cpu::make_backend({.n_threads = 2});
}

// A test parameterized by backend name, skipped (saying why) where the backend cannot run.
class OnBackend : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string why = unavailable(GetParam());
    if (!why.empty()) GTEST_SKIP() << GetParam() << " backend unavailable: " << why;
  }
};

// Runs batches of one model on one backend and copies the logits out. A device backend (CUDA)
// runs with the CPU backend as its fallback, as the engine runs it.
class Runner {
 public:
  explicit Runner(const std::string& backend)
      : backend_(make_backend(backend)),
        fallback_(backend == "cuda" ? make_backend("cpu") : nullptr),
        exec_(fallback_ ? std::vector<ml::Backend*>{backend_.get(), fallback_.get()}
                        : std::vector<ml::Backend*>{backend_.get()}) {}

  // Logits [n_outputs][n_vocab] of a batch.
  std::vector<float> logits(Model& m, const Batch& b, kvcache::Causal& cache) {
    graph_.clear();
    ml::Tensor out = m.forward(graph_, b, cache);
    exec_.compute(graph_, {out});
    const auto* p = static_cast<const float*>(out.data());
    return {p, p + out.nelements()};
  }
  ml::Executor& executor() { return exec_; }

 private:
  std::unique_ptr<ml::Backend> backend_;
  std::unique_ptr<ml::Backend> fallback_;
  ml::Executor exec_;
  ml::Graph graph_;
};

inline int32_t argmax(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

// Feeds the prompt as one batch, then n greedy tokens one at a time; returns the new tokens.
inline std::vector<int32_t> greedy(Runner& r, Model& m, kvcache::Causal& cache,
                                   const std::vector<int32_t>& prompt, int n, int32_t seq = 0) {
  Batch b;
  for (size_t i = 0; i < prompt.size(); ++i) {
    b.add(prompt[i], static_cast<int32_t>(i), seq, i + 1 == prompt.size());
  }
  std::vector<int32_t> out;
  int32_t pos = static_cast<int32_t>(prompt.size());
  for (int i = 0; i < n; ++i) {
    const std::vector<float> l = r.logits(m, b, cache);
    out.push_back(argmax(l.data(), m.config().n_vocab));
    b.clear();
    b.add(out.back(), pos++, seq, true);
  }
  return out;
}

inline std::vector<int32_t> parse_ids(const std::string& text) {
  std::istringstream in(text);
  std::vector<int32_t> ids;
  int32_t v;
  while (in >> v) ids.push_back(v);
  return ids;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Largest absolute difference; sizes must agree.
inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float d = 0.0f;
  for (size_t i = 0; i < n; ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

}  // namespace corral::model::testing
