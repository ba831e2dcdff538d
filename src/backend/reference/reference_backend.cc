#include <array>

#include "backend/reference/reference.h"

namespace corral::backend::reference {
namespace {

using ml::OpKind;

constexpr std::array<Kernel, static_cast<size_t>(OpKind::kCount)> make_table() {
  std::array<Kernel, static_cast<size_t>(OpKind::kCount)> t{};
  auto set = [&t](OpKind k, Kernel f) { t[static_cast<size_t>(k)] = f; };
  set(OpKind::kCont, cont);
  set(OpKind::kCpy, cpy);
  set(OpKind::kGetRows, get_rows);
  set(OpKind::kMulMat, mul_mat);
  set(OpKind::kAdd, add);
  set(OpKind::kSub, sub);
  set(OpKind::kMul, mul);
  set(OpKind::kDiv, div);
  set(OpKind::kScale, scale);
  set(OpKind::kRmsNorm, rms_norm);
  set(OpKind::kLayerNorm, layer_norm);
  set(OpKind::kSoftMax, softmax);
  set(OpKind::kRope, rope);
  set(OpKind::kSilu, silu);
  set(OpKind::kGelu, gelu);
  set(OpKind::kGeluQuick, gelu_quick);
  set(OpKind::kSwiGlu, swiglu);
  set(OpKind::kConcat, concat);
  set(OpKind::kSetRows, set_rows);
  set(OpKind::kArgMax, argmax);
  set(OpKind::kSumRows, sum_rows);
  set(OpKind::kMean, mean);
  set(OpKind::kFlashAttn, flash_attn);
  set(OpKind::kIm2Col, im2col);
  set(OpKind::kConv2D, conv2d);
  return t;
}
constexpr auto kKernels = make_table();

class ReferenceBackend final : public ml::Backend {
 public:
  std::string_view name() const override { return "reference"; }
  bool supports(const ml::Graph&, const ml::Node& n) const override {
    return n.kind() == OpKind::kView || kKernels[static_cast<size_t>(n.kind())] != nullptr;
  }
  void compute(const ml::Graph& g, std::span<const int> nodes) override {
    for (int id : nodes) {
      const ml::Node& n = g.node(id);
      if (Kernel k = kKernels[static_cast<size_t>(n.kind())]) k(g, n);
    }
  }
};

}  // namespace

std::unique_ptr<ml::Backend> make_backend() { return std::make_unique<ReferenceBackend>(); }

}  // namespace corral::backend::reference
