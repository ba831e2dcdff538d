#include "nn/rope.h"

#include <cmath>
#include <numbers>

namespace corral::nn {

std::vector<float> llama3_freq_factors(int n_dims, float freq_base, float factor,
                                       float low_freq_factor, float high_freq_factor,
                                       int n_ctx_orig) {
  const float low_freq_wavelen = static_cast<float>(n_ctx_orig) / low_freq_factor;
  const float high_freq_wavelen = static_cast<float>(n_ctx_orig) / high_freq_factor;
  std::vector<float> out;
  for (int i = 0; i < n_dims; i += 2) {
    const float freq = 1.0f / std::pow(freq_base, static_cast<float>(i) / n_dims);
    const float wavelen = 2 * std::numbers::pi_v<float> / freq;
    if (wavelen < high_freq_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_freq_wavelen) {
      out.push_back(factor);
    } else {
      // Interpolates between the scaled and the original frequency by the wavelength.
      const float smooth = (static_cast<float>(n_ctx_orig) / wavelen - low_freq_factor) /
                           (high_freq_factor - low_freq_factor);
      out.push_back(1.0f / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

ml::Tensor RoPE::forward(ml::Tensor x, ml::Tensor positions) const {
  ml::Graph& g = *x.graph();
  ml::Tensor factors;
  if (freq_factors.present()) {
    factors = freq_factors.leaf(g);
  } else if (!computed_.empty()) {
    // The graph only reads leaves; the factors stay owned here.
    factors = g.leaf(ml::DType::F32, {static_cast<int64_t>(computed_.size())},
                     const_cast<float*>(computed_.data()), "rope_freqs (computed)");
  }
  return ml::rope(x, positions, factors, params_);
}

}  // namespace corral::nn
