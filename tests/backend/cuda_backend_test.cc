// The CUDA backend's memory model (backend/cuda/cuda.h): nodes split between the GPU and a host
// backend, resident weights, device-allocated caches. Every op's kernels are covered by the op
// harness (ops_test.cc, cases cuda_*); these tests skip, saying why, without a device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <vector>

#include "backend/cuda/cuda.h"
#include "backend/reference/reference.h"
#include "ml/backend.h"
#include "ml/graph.h"

namespace corral::backend::cuda {
namespace {

// The CUDA backend minus some ops, which then run on the fallback: makes the executor alternate.
class WithoutOps final : public ml::Backend {
 public:
  WithoutOps(ml::Backend& inner, std::vector<ml::OpKind> refused)
      : inner_(inner), refused_(std::move(refused)) {}
  std::string_view name() const override { return inner_.name(); }
  bool supports(const ml::Graph& g, const ml::Node& n) const override {
    for (ml::OpKind k : refused_) {
      if (n.kind() == k) return false;
    }
    return inner_.supports(g, n);
  }
  void prepare(const ml::Graph& g, std::span<const int> order,
               std::span<ml::Backend* const> placement, std::span<const int> outputs) override {
    placement_.assign(placement.begin(), placement.end());
    for (ml::Backend*& b : placement_) {
      if (b == this) b = &inner_;
    }
    inner_.prepare(g, order, placement_, outputs);
  }
  void compute(const ml::Graph& g, std::span<const int> nodes) override {
    inner_.compute(g, nodes);
  }
  void synchronize() override { inner_.synchronize(); }

 private:
  ml::Backend& inner_;
  std::vector<ml::OpKind> refused_;
  std::vector<ml::Backend*> placement_;
};

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (devices().empty()) GTEST_SKIP() << "no CUDA device: " << unavailable_reason();
    gpu_ = make_backend();
    reference_ = reference::make_backend();
  }
  std::unique_ptr<CudaBackend> gpu_;
  std::unique_ptr<ml::Backend> reference_;
};

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>((i * 37) % 101) / 101.0f - 0.3f;
  return v;
}

std::vector<float> values(const ml::Tensor& t) {
  const auto* p = static_cast<const float*>(t.data());
  return {p, p + t.nelements()};
}

void expect_near(const std::vector<float>& got, const std::vector<float>& want, float tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST(CudaBackendAvailability, MakeBackendWithoutADeviceThrowsSayingWhy) {
  if (!devices().empty()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_FALSE(unavailable_reason().empty());
  try {
    make_backend();
    FAIL() << "make_backend succeeded without a device";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(unavailable_reason()), std::string::npos) << e.what();
  }
}

// x -> mul_mat -> silu (host) -> add -> rms_norm -> mul_mat (host) -> scale: results cross
// between device and host memory in both directions.
TEST_F(CudaBackendTest, NodesSplitBetweenDeviceAndHostMatchTheReference) {
  const int64_t k = 64, m = 48, n = 5;
  std::vector<float> w1 = ramp(k * m, 1.0f), w2 = ramp(m * m, 0.5f), x = ramp(k * n, 2.0f),
                     bias = ramp(m, 0.1f);
  auto build = [&](ml::Graph& g) {
    ml::Tensor tw1 = g.leaf(ml::DType::F32, {k, m}, w1.data());
    ml::Tensor tw2 = g.leaf(ml::DType::F32, {m, m}, w2.data());
    ml::Tensor tx = g.leaf(ml::DType::F32, {k, n}, x.data());
    ml::Tensor tb = g.leaf(ml::DType::F32, {m}, bias.data());
    ml::Tensor h = ml::silu(ml::mul_mat(tw1, tx));
    h = ml::rms_norm(ml::add(h, tb), 1e-5f);
    return ml::scale(ml::mul_mat(tw2, h), 0.5f);
  };
  ml::Graph want_g;
  ml::Tensor want = build(want_g);
  ml::Executor(std::vector<ml::Backend*>{reference_.get()}).compute(want_g, {want});

  WithoutOps split(*gpu_, {ml::OpKind::kSilu, ml::OpKind::kMulMat});
  WithoutOps split2(*gpu_, {ml::OpKind::kAdd, ml::OpKind::kScale});
  for (ml::Backend* b : {static_cast<ml::Backend*>(gpu_.get()), static_cast<ml::Backend*>(&split),
                         static_cast<ml::Backend*>(&split2)}) {
    ml::Graph g;
    ml::Tensor got = build(g);
    ml::Executor ex({b, reference_.get()});
    ex.compute(g, {got});
    expect_near(values(got), values(want), 1e-4f);
    // A second compute of the same graph reuses the plans and must agree.
    ex.compute(g, {got});
    expect_near(values(got), values(want), 1e-4f);
  }
}

// A resident weight is read from its device copy: changing the host bytes afterwards (which the
// contract forbids) does not change the result.
TEST_F(CudaBackendTest, ResidentWeightsAreReadFromTheDeviceCopy) {
  const int64_t k = 32, m = 8;
  std::vector<float> w = ramp(k * m, 1.0f), x = ramp(k, 1.0f);
  auto resident = gpu_->make_resident(w.data(), w.size() * sizeof(float));
  EXPECT_GE(gpu_->device_bytes(), w.size() * sizeof(float));
  auto run = [&] {
    ml::Graph g;
    ml::Tensor y = ml::mul_mat(g.leaf(ml::DType::F32, {k, m}, w.data()),
                               g.leaf(ml::DType::F32, {k, 1}, x.data()));
    ml::Executor ex({gpu_.get(), reference_.get()});
    ex.compute(g, {y});
    return values(y);
  };
  const std::vector<float> before = run();
  std::fill(w.begin(), w.end(), 0.0f);
  EXPECT_EQ(run(), before);
  resident.reset();  // no longer resident: the host bytes (zeros) are read
  for (float v : run()) EXPECT_EQ(v, 0.0f);
}

// A cache from allocate() is written by set_rows on the device, read there by later graphs,
// and copied home when a host backend reads it.
TEST_F(CudaBackendTest, AllocatedCacheRowsStayOnTheDeviceUntilTheHostReadsThem) {
  const int64_t width = 16, rows = 8;
  auto cache = gpu_->allocate(width * rows * sizeof(float));
  std::vector<float> row_values = ramp(width * 2, 3.0f);
  std::vector<int32_t> where = {5, 2};
  {
    ml::Graph g;
    ml::Tensor dst = g.leaf(ml::DType::F32, {width, rows}, cache->data());
    ml::Tensor written = ml::set_rows(dst, g.leaf(ml::DType::F32, {width, 2}, row_values.data()),
                                      g.leaf(ml::DType::I32, {2}, where.data()));
    ml::Executor ex({gpu_.get(), reference_.get()});
    ex.compute(g, {written});
  }
  std::vector<int32_t> ids = {2, 5, 0};
  auto read = [&](ml::Backend* first) {
    ml::Graph g;
    ml::Tensor table = g.leaf(ml::DType::F32, {width, rows}, cache->data());
    ml::Tensor got = ml::get_rows(table, g.leaf(ml::DType::I32, {3}, ids.data()));
    ml::Executor ex({first, reference_.get()});
    ex.compute(g, {got});
    return values(got);
  };
  std::vector<float> want(width * 3, 0.0f);  // row 0 was never written: zeros
  std::memcpy(want.data(), row_values.data() + width, width * sizeof(float));
  std::memcpy(want.data() + width, row_values.data(), width * sizeof(float));
  EXPECT_EQ(read(gpu_.get()), want);
  WithoutOps host_reads(*gpu_, {ml::OpKind::kGetRows});
  EXPECT_EQ(read(&host_reads), want);
}

}  // namespace
}  // namespace corral::backend::cuda
