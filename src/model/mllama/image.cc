// MllamaImageProcessor as transformers 5 runs it by default (the torchvision backend): choose
// the tile grid, resize (bilinear, antialiased, on 8-bit pixels) to fit it keeping the aspect
// ratio, pad right and bottom with zeros, split into tiles, then rescale and normalize.
#include "model/mllama/image.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "image/normalize.h"
#include "image/resample.h"

namespace corral::model::mllama {
namespace {

// get_all_supported_aspect_ratios: (a, b) with a * b <= max_tiles, a outer. The optimal canvas
// reads a pair as (tiles high, tiles wide), and so does the aspect ratio id.
std::vector<std::pair<int64_t, int64_t>> supported_aspect_ratios(int64_t max_tiles) {
  std::vector<std::pair<int64_t, int64_t>> ratios;
  for (int64_t a = 1; a <= max_tiles; ++a) {
    for (int64_t b = 1; b <= max_tiles; ++b) {
      if (a * b <= max_tiles) ratios.emplace_back(a, b);
    }
  }
  return ratios;
}

// get_optimal_tiled_canvas: the smallest upscale that fits, else the mildest downscale; among
// canvases with that scale the smallest area. Returns an index into `ratios`.
size_t optimal_canvas(const std::vector<std::pair<int64_t, int64_t>>& ratios, int64_t height,
                      int64_t width, int64_t tile) {
  std::vector<double> scales;
  for (const auto& [a, b] : ratios) {
    const double scale_h = double(a * tile) / double(height);
    const double scale_w = double(b * tile) / double(width);
    scales.push_back(scale_w > scale_h ? scale_h : scale_w);
  }
  bool any_up = false;
  double selected = 0.0;
  for (double s : scales) {
    if (s >= 1.0 && (!any_up || s < selected)) {
      selected = s;
      any_up = true;
    }
  }
  if (!any_up) {
    selected = *std::max_element(scales.begin(), scales.end());
  }
  size_t best = ratios.size();
  for (size_t i = 0; i < ratios.size(); ++i) {
    if (scales[i] != selected) continue;
    if (best == ratios.size() ||
        ratios[i].first * ratios[i].second < ratios[best].first * ratios[best].second) {
      best = i;
    }
  }
  return best;
}

// get_image_size_fit_to_canvas: (height, width) within the canvas, at least a tile where the
// image allows, keeping the aspect ratio.
std::pair<int64_t, int64_t> fit_to_canvas(int64_t height, int64_t width, int64_t canvas_h,
                                          int64_t canvas_w, int64_t tile) {
  const int64_t target_w = std::clamp(width, tile, canvas_w);
  const int64_t target_h = std::clamp(height, tile, canvas_h);
  const double scale_h = double(target_h) / double(height);
  const double scale_w = double(target_w) / double(width);
  if (scale_w < scale_h) {
    const int64_t h = int64_t(std::floor(double(height) * scale_w));
    return {std::min(h == 0 ? 1 : h, target_h), target_w};
  }
  const int64_t w = int64_t(std::floor(double(width) * scale_h));
  return {target_h, std::min(w == 0 ? 1 : w, target_w)};
}

}  // namespace

ImageInput preprocess(const image::Image& rgb, const ImageOptions& options) {
  const int64_t tile = options.image_size;
  const int64_t max_tiles = options.max_image_tiles;
  if (tile < 1 || tile > 4096 || max_tiles < 1 || max_tiles > 64) {
    throw image::Error("mllama image processor: invalid settings (tile size " +
                       std::to_string(tile) + ", max tiles " + std::to_string(max_tiles) + ")");
  }
  if (rgb.width < 1 || rgb.height < 1) throw image::Error("the image is empty");

  const auto ratios = supported_aspect_ratios(max_tiles);
  const size_t choice = optimal_canvas(ratios, rgb.height, rgb.width, tile);
  const auto [tiles_h, tiles_w] = ratios[choice];
  const auto [new_h, new_w] =
      fit_to_canvas(rgb.height, rgb.width, tiles_h * tile, tiles_w * tile, tile);
  const image::Image resized = image::resize(rgb, new_w, new_h, image::Filter::kBilinear);

  const image::Normalizer normalize(options.mean, options.std, options.rescale_factor);

  ImageInput input;
  input.shape = {1, 1, max_tiles, 3, tile, tile};
  input.pixel_values.assign(size_t(max_tiles * 3 * tile * tile), 0.0f);  // unused tiles: zero
  for (int64_t ty = 0; ty < tiles_h; ++ty) {
    for (int64_t tx = 0; tx < tiles_w; ++tx) {
      float* out = &input.pixel_values[size_t((ty * tiles_w + tx) * 3 * tile * tile)];
      for (int c = 0; c < 3; ++c) {
        for (int64_t y = 0; y < tile; ++y) {
          for (int64_t x = 0; x < tile; ++x) {
            const int64_t sy = ty * tile + y, sx = tx * tile + x;
            const float v =
                (sy < new_h && sx < new_w) ? resized.rgb[size_t((sy * new_w + sx) * 3 + c)] : 0;
            *out++ = normalize(v, c);
          }
        }
      }
    }
  }
  input.aspect_ratio_id = int32_t(choice + 1);
  input.aspect_ratio_mask.assign(size_t(max_tiles), 0);
  input.aspect_ratio_mask[0] = 1;
  std::fill_n(input.aspect_ratio_mask.begin(), tiles_h * tiles_w, 1);
  return input;
}

}  // namespace corral::model::mllama
