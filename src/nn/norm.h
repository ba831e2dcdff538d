// Normalizations over ne[0] with a learned scale. PyTorch: LlamaRMSNorm, nn.LayerNorm.
#pragma once

#include "nn/module.h"

namespace corral::nn {

class RMSNorm : public Module {
 public:
  RMSNorm(Module& parent, std::string name, int64_t n = -1, float eps = 1e-6f)
      : Module(parent, std::move(name)),
        weight(*this, "weight", WeightSpec({n}).f32()),
        eps_(eps) {}

  // x [n, ...] -> x / rms(x) * weight
  ml::Tensor forward(ml::Tensor x) const {
    return ml::mul(ml::rms_norm(x, eps_), weight.leaf(*x.graph()));
  }

  Weight weight;

 private:
  float eps_;
};

class LayerNorm : public Module {
 public:
  LayerNorm(Module& parent, std::string name, int64_t n = -1, float eps = 1e-5f)
      : Module(parent, std::move(name)),
        weight(*this, "weight", WeightSpec({n}).f32()),
        bias(*this, "bias", WeightSpec({n}).f32().optional_if()),
        eps_(eps) {}

  // x [n, ...] -> (x - mean) / sqrt(var + eps) * weight + bias
  ml::Tensor forward(ml::Tensor x) const {
    ml::Graph& g = *x.graph();
    return ml::layer_norm(x, weight.leaf(g), bias.present() ? bias.leaf(g) : ml::Tensor{}, eps_);
  }

  Weight weight;
  Weight bias;

 private:
  float eps_;
};

}  // namespace corral::nn
