// Qwen2VLImageProcessor (transformers models/qwen2_vl/image_processing_qwen2_vl.py): resize to
// multiples of patch_size * merge_size within [min_pixels, max_pixels] (smart_resize), rescale,
// normalize and cut into patches of temporal_patch_size frames.
#pragma once

#include <array>
#include <cstdint>

#include "image/image.h"
#include "model/vision.h"

namespace corral::model::qwen2vl {

struct ImageOptions {
  int64_t patch_size = 14;
  int64_t merge_size = 2;
  int64_t temporal_patch_size = 2;
  int64_t min_pixels = 56 * 56;
  int64_t max_pixels = 28 * 28 * 1280;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
  float rescale_factor = 1.0f / 255.0f;
};

// pixel_values [grid_t * grid_h * grid_w, 3 * temporal_patch_size * patch_size^2] and
// grid_thw. Throws image::Error (an image too small or too elongated for smart_resize).
ImageInput preprocess(const image::Image& rgb, const ImageOptions& options);

}  // namespace corral::model::qwen2vl
