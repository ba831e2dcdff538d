// transformers' fused rescale-and-normalize of 8-bit pixels, as its torchvision backend does it:
// mean and std are multiplied by 1 / rescale_factor once (float32), then each pixel becomes
// (x - mean') / std' in float32.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace corral::image {

class Normalizer {
 public:
  Normalizer(const std::array<float, 3>& mean, const std::array<float, 3>& std,
             float rescale_factor) {
    // transformers computes 1 / rescale_factor from the double 1/255, which gives 255 exactly;
    // a factor kept as float32 (1/255 rounded) would give 254.99998. Rescale factors are the
    // reciprocals of whole numbers in practice, so a reciprocal that is one within float
    // rounding is taken as that whole number.
    double inverse = 1.0 / double(rescale_factor);
    if (std::abs(inverse - std::nearbyint(inverse)) < 1e-6 * inverse) {
      inverse = std::nearbyint(inverse);
    }
    const float scale = float(inverse);
    for (int c = 0; c < 3; ++c) {
      mean_[c] = mean[c] * scale;
      std_[c] = std[c] * scale;
    }
  }

  float operator()(float value, int channel) const {
    return (value - mean_[channel]) / std_[channel];
  }

 private:
  float mean_[3];
  float std_[3];
};

}  // namespace corral::image
