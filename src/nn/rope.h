// Rotary position embedding (Su et al., RoFormer). The rotation convention is GGUF's: llama
// stores Q/K permuted so that adjacent pairs rotate (kNormal); qwen2 and most others rotate
// halves (kNeox). Frequency factors (Llama 3 scaling, LongRoPE) divide each pair's angle; they
// come from the file's `rope_freqs.weight` or are computed from metadata.
#pragma once

#include <vector>

#include "nn/module.h"

namespace corral::nn {

// Hugging Face's rope_type "llama3" (transformers modeling_rope_utils
// _compute_llama3_parameters) as per-pair divisors of the angle, as llama.cpp's converter writes
// them to rope_freqs.weight: 1 for high frequencies, `factor` for low, a smooth mix between.
std::vector<float> llama3_freq_factors(int n_dims, float freq_base, float factor,
                                       float low_freq_factor, float high_freq_factor,
                                       int n_ctx_orig);

class RoPE : public Module {
 public:
  // The module is named after its optional tensor of frequency factors ("rope_freqs").
  RoPE(Module& parent, std::string name, const ml::op::Rope& params)
      : Module(parent, std::move(name)),
        freq_factors(*this, "weight", WeightSpec({params.n_dims / 2}).f32().optional_if()),
        params_(params) {}

  // Used when the file holds no factors.
  void set_computed_factors(std::vector<float> factors) { computed_ = std::move(factors); }

  // x [head_dim, n_head, n_tokens] rotated by positions I32 [n_tokens].
  ml::Tensor forward(ml::Tensor x, ml::Tensor positions) const;
  const ml::op::Rope& params() const { return params_; }

  Weight freq_factors;

 private:
  ml::op::Rope params_;
  std::vector<float> computed_;
};

}  // namespace corral::nn
