// y = W x (+ b). PyTorch: nn.Linear(in, out, bias). GGUF stores W as [in, out] (ggml order).
#pragma once

#include "nn/module.h"

namespace corral::nn {

// A bias is used whenever the file has one (llama.cpp loads them the same way for llama).
enum class Bias { kOptional, kRequired };

class Linear : public Module {
 public:
  // in/out of -1 are not checked. `alternate` names a sibling whose weight stands in when this
  // one is absent (tied embeddings).
  Linear(Module& parent, std::string name, int64_t in = -1, int64_t out = -1,
         Bias bias = Bias::kOptional, std::string alternate = {})
      : Module(parent, std::move(name)),
        weight(*this, "weight", WeightSpec({in, out}).or_sibling(std::move(alternate))),
        bias(*this, "bias", WeightSpec({out}).f32().optional_if(bias != Bias::kRequired)) {}

  // x [in, n_tokens] -> [out, n_tokens]
  ml::Tensor forward(ml::Tensor x) const {
    ml::Tensor y = ml::mul_mat(weight.leaf(*x.graph()), x);
    return bias.present() ? ml::add(y, bias.leaf(*x.graph())) : y;
  }

  Weight weight;
  Weight bias;
};

}  // namespace corral::nn
