// Resizing 8-bit RGB images exactly as the image processors of transformers 5 do: their default
// (torchvision) backend calls torchvision.transforms.v2.functional.resize on a uint8 tensor with
// antialias=True, which on CPU runs PyTorch's native uint8 antialiased kernel (for bilinear on
// AVX2 machines, for bicubic always). That kernel follows PIL's ImagingResample (separable
// filters whose support widens by the downscale factor, horizontal pass then vertical pass,
// rounding and clamping to 8 bits between them) but quantizes the normalized weights to int16
// with a precision chosen from the largest weight, where PIL uses 22 bits: the two differ by one
// 8-bit step on some pixels, and the reference values follow PyTorch.
#pragma once

#include <cstdint>

#include "image/image.h"

namespace corral::image {

enum class Filter {
  kBilinear,  // triangle filter, support 1 (PIL resample=2)
  kBicubic,   // Keys cubic with a = -0.5, support 2 (PIL resample=3)
};

// `src` resized to width x height (both >= 1). A side whose size does not change is not
// resampled. Throws Error for an empty source or target.
Image resize(const Image& src, int64_t width, int64_t height, Filter filter);

}  // namespace corral::image
