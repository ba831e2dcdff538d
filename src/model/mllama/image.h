// MllamaImageProcessor (transformers models/mllama/image_processing_mllama.py): fit the image to
// the best supported aspect ratio of at most max_image_tiles tiles, resize keeping its aspect,
// pad, split into tiles, rescale and normalize.
#pragma once

#include <array>
#include <cstdint>

#include "image/image.h"
#include "model/vision.h"

namespace corral::model::mllama {

struct ImageOptions {
  int64_t image_size = 560;  // a tile's side
  int64_t max_image_tiles = 4;
  std::array<float, 3> mean{0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std{0.26862954f, 0.26130258f, 0.27577711f};
  float rescale_factor = 1.0f / 255.0f;
};

// pixel_values [1, 1, max_image_tiles, 3, image_size, image_size] (unused tiles zero),
// aspect_ratio_id (1-based) and aspect_ratio_mask [max_image_tiles]. Throws image::Error.
ImageInput preprocess(const image::Image& rgb, const ImageOptions& options);

}  // namespace corral::model::mllama
