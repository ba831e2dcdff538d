// Row lookup. PyTorch: nn.Embedding(n_vocab, n_embd). GGUF stores the table as [n_embd, n_vocab].
#pragma once

#include "nn/module.h"

namespace corral::nn {

class Embedding : public Module {
 public:
  Embedding(Module& parent, std::string name, int64_t n_embd = -1, int64_t n_rows = -1)
      : Module(parent, std::move(name)), weight(*this, "weight", WeightSpec({n_embd, n_rows})) {}

  // ids I32 [n_tokens] -> f32 [n_embd, n_tokens]
  ml::Tensor forward(ml::Tensor ids) const { return ml::get_rows(weight.leaf(*ids.graph()), ids); }

  Weight weight;
};

}  // namespace corral::nn
