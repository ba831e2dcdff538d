// Qwen2VLImageProcessor as transformers 5 runs it by default (the torchvision backend):
// smart_resize, resize (bicubic, antialiased, on 8-bit pixels), rescale and normalize, repeat the
// image temporal_patch_size times and cut it into patches, merge groups kept together.
#include "model/qwen2vl/image.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string>

#include "image/normalize.h"
#include "image/resample.h"

namespace corral::model::qwen2vl {
namespace {

// Python's round(): halves to even (the default floating-point rounding mode).
int64_t round_half_even(double x) { return int64_t(std::nearbyint(x)); }

// Python's str() of a float: the shortest text that reads back, with a ".0" on whole numbers.
std::string format_ratio(double ratio) {
  char text[64];
  const auto end = std::to_chars(text, text + sizeof text, ratio).ptr;
  std::string s(text, end);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

// smart_resize: (height, width) as multiples of `factor` with height * width within
// [min_pixels, max_pixels], close to the image's aspect ratio.
std::pair<int64_t, int64_t> smart_resize(int64_t height, int64_t width, int64_t factor,
                                         int64_t min_pixels, int64_t max_pixels) {
  const double ratio = double(std::max(height, width)) / double(std::min(height, width));
  if (ratio > 200) {
    throw image::Error("the image is " + std::to_string(width) + "x" + std::to_string(height) +
                       " pixels: absolute aspect ratio must be smaller than 200, got " +
                       format_ratio(ratio));
  }
  int64_t h_bar = round_half_even(double(height) / double(factor)) * factor;
  int64_t w_bar = round_half_even(double(width) / double(factor)) * factor;
  const double pixels = double(height * width);
  if (h_bar * w_bar > max_pixels) {
    const double beta = std::sqrt(pixels / double(max_pixels));
    h_bar = std::max(factor, int64_t(std::floor(double(height) / beta / double(factor))) * factor);
    w_bar = std::max(factor, int64_t(std::floor(double(width) / beta / double(factor))) * factor);
  } else if (h_bar * w_bar < min_pixels) {
    const double beta = std::sqrt(double(min_pixels) / pixels);
    h_bar = int64_t(std::ceil(double(height) * beta / double(factor))) * factor;
    w_bar = int64_t(std::ceil(double(width) * beta / double(factor))) * factor;
  }
  if (h_bar < factor || w_bar < factor) {
    throw image::Error("the image is " + std::to_string(width) + "x" + std::to_string(height) +
                       " pixels, too small to resize to multiples of " + std::to_string(factor));
  }
  return {h_bar, w_bar};
}

}  // namespace

ImageInput preprocess(const image::Image& rgb, const ImageOptions& options) {
  const int64_t patch = options.patch_size, merge = options.merge_size;
  const int64_t temporal = options.temporal_patch_size;
  if (patch < 1 || patch > 1024 || merge < 1 || merge > 64 || temporal < 1 || temporal > 64 ||
      options.min_pixels < 0 || options.max_pixels < 1 || options.max_pixels > (int64_t{1} << 32)) {
    throw image::Error("qwen2vl image processor: invalid settings");
  }
  if (rgb.width < 1 || rgb.height < 1) throw image::Error("the image is empty");

  const int64_t factor = patch * merge;
  const auto [height, width] =
      smart_resize(rgb.height, rgb.width, factor, options.min_pixels, options.max_pixels);
  const image::Image resized = image::resize(rgb, width, height, image::Filter::kBicubic);

  const image::Normalizer normalize(options.mean, options.std, options.rescale_factor);

  // transformers views the frames as [t, temporal, C, gh/m, m, p, gw/m, m, p] and permutes to
  // [t, gh/m, gw/m, m, m, C, temporal, p, p]: a row per patch (merge groups adjacent), a column
  // per (channel, frame, y, x). Every frame is the image.
  const int64_t grid_h = height / patch, grid_w = width / patch;
  const int64_t row = 3 * temporal * patch * patch;
  ImageInput input;
  input.grid_thw = {1, grid_h, grid_w};
  input.shape = {grid_h * grid_w, row};
  input.pixel_values.resize(size_t(grid_h * grid_w * row));
  float* out = input.pixel_values.data();
  for (int64_t bh = 0; bh < grid_h / merge; ++bh) {
    for (int64_t bw = 0; bw < grid_w / merge; ++bw) {
      for (int64_t mh = 0; mh < merge; ++mh) {
        for (int64_t mw = 0; mw < merge; ++mw) {
          const int64_t y0 = (bh * merge + mh) * patch, x0 = (bw * merge + mw) * patch;
          for (int c = 0; c < 3; ++c) {
            for (int64_t t = 0; t < temporal; ++t) {
              for (int64_t py = 0; py < patch; ++py) {
                const uint8_t* src = &resized.rgb[size_t(((y0 + py) * width + x0) * 3 + c)];
                for (int64_t px = 0; px < patch; ++px) {
                  *out++ = normalize(float(src[px * 3]), c);
                }
              }
            }
          }
        }
      }
    }
  }
  return input;
}

}  // namespace corral::model::qwen2vl
