// qwen2vl::preprocess against Qwen2VLImageProcessor (transformers 5.17, default torchvision
// backend) on the tiny-qwen2vl fixture's image.png, and smart_resize's limits.
#include <gtest/gtest.h>

#include "model/qwen2vl/image.h"
#include "vision_reference.h"

namespace corral::model::qwen2vl {
namespace {

using model::testing::compare;
using model::testing::flat;
using model::testing::read_json;

// The options of the fixture's preprocessor_config.json (size = {shortest_edge: min_pixels,
// longest_edge: max_pixels}).
ImageOptions fixture_options() {
  const auto config =
      read_json(corral::testing::testdata_path("reference/tiny-qwen2vl/preprocessor_config.json"));
  ImageOptions options;
  options.patch_size = config["patch_size"].get<int64_t>();
  options.merge_size = config["merge_size"].get<int64_t>();
  options.temporal_patch_size = config["temporal_patch_size"].get<int64_t>();
  options.min_pixels = config["size"]["shortest_edge"].get<int64_t>();
  options.max_pixels = config["size"]["longest_edge"].get<int64_t>();
  for (int c = 0; c < 3; ++c) {
    options.mean[c] = config["image_mean"][c].get<float>();
    options.std[c] = config["image_std"][c].get<float>();
  }
  options.rescale_factor = config["rescale_factor"].get<float>();
  EXPECT_EQ(config["resample"].get<int>(), 3);  // bicubic
  return options;
}

TEST(Qwen2vlImage, MatchesTransformers) {
  const auto dir = corral::testing::testdata_path("reference/tiny-qwen2vl");
  const auto ref = read_json(dir + "/reference.json");
  const image::Image rgb = model::testing::read_image(dir + "/image.png");
  const ImageInput input = preprocess(rgb, fixture_options());

  EXPECT_EQ(input.shape, flat<int64_t>(ref["pixel_values_shape"]));
  const auto grid = flat<int64_t>(ref["image_grid_thw"]);
  ASSERT_EQ(grid.size(), 3u);
  EXPECT_EQ(input.grid_thw[0], grid[0]);
  EXPECT_EQ(input.grid_thw[1], grid[1]);
  EXPECT_EQ(input.grid_thw[2], grid[2]);
  const auto want = flat<float>(ref["pixel_values"]);
  const auto diff = compare(input.pixel_values, want, 1e-5);
  EXPECT_LE(diff.max, 1e-5);
  EXPECT_EQ(diff.over, 0u);
  RecordProperty("max_abs_diff", model::testing::scientific(diff.max));
}

ImageOptions small_options() {
  ImageOptions options;
  options.min_pixels = 3136;
  options.max_pixels = 12544;
  return options;
}

TEST(Qwen2vlImage, SmartResizeSizes) {
  struct Case {
    int64_t w, h, grid_w, grid_h;
  } cases[] = {
      {100, 80, 8, 6},    // rounded to multiples of 28: 112x84
      {1, 1, 4, 4},       // below min_pixels: scaled up to 56x56
      {1000, 800, 8, 6},  // above max_pixels: floor(1000/beta/28)*28 = 112 by 84
      {42, 42, 4, 4},     // 42/28 = 1.5 rounds to even (2): 56x56
      {70, 70, 4, 4},     // 2.5 rounds to even (2), then min_pixels is met exactly
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h));
    const image::Image rgb{c.w, c.h, std::vector<uint8_t>(size_t(c.w * c.h * 3), 50)};
    const ImageInput input = preprocess(rgb, small_options());
    EXPECT_EQ(input.grid_thw, (std::array<int64_t, 3>{1, c.grid_h, c.grid_w}));
    EXPECT_EQ(input.shape, (std::vector<int64_t>{c.grid_h * c.grid_w, 3 * 2 * 14 * 14}));
    EXPECT_EQ(input.pixel_values.size(), size_t(c.grid_h * c.grid_w * 3 * 2 * 14 * 14));
  }
}

TEST(Qwen2vlImage, RefusesExtremeAspectRatios) {
  const image::Image thin{1, 4000, std::vector<uint8_t>(4000 * 3, 9)};
  try {
    preprocess(thin, ImageOptions{});
    FAIL() << "a 1x4000 image was accepted";
  } catch (const image::Error& e) {
    EXPECT_STREQ(e.what(),
                 "the image is 1x4000 pixels: absolute aspect ratio must be smaller than 200, got "
                 "4000.0");
  }
  // 200 exactly is allowed.
  const image::Image edge{200, 1, std::vector<uint8_t>(200 * 3, 9)};
  EXPECT_NO_THROW(preprocess(edge, ImageOptions{}));
}

}  // namespace
}  // namespace corral::model::qwen2vl
