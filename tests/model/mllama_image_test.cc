// mllama::preprocess against MllamaImageProcessor (transformers 5.17, default torchvision
// backend) on the tiny-mllama fixture's image.png, and on images of extreme shapes.
#include <gtest/gtest.h>

#include "model/mllama/image.h"
#include "vision_reference.h"

namespace corral::model::mllama {
namespace {

using model::testing::compare;
using model::testing::flat;
using model::testing::read_json;

// The options of the fixture's preprocessor_config.json.
ImageOptions fixture_options() {
  const auto config =
      read_json(corral::testing::testdata_path("reference/tiny-mllama/preprocessor_config.json"));
  ImageOptions options;
  options.image_size = config["size"]["height"].get<int64_t>();
  EXPECT_EQ(config["size"]["width"].get<int64_t>(), options.image_size);
  options.max_image_tiles = config["max_image_tiles"].get<int64_t>();
  for (int c = 0; c < 3; ++c) {
    options.mean[c] = config["image_mean"][c].get<float>();
    options.std[c] = config["image_std"][c].get<float>();
  }
  options.rescale_factor = config["rescale_factor"].get<float>();
  EXPECT_EQ(config["resample"].get<int>(), 2);  // bilinear
  return options;
}

TEST(MllamaImage, MatchesTransformers) {
  const auto dir = corral::testing::testdata_path("reference/tiny-mllama");
  const auto ref = read_json(dir + "/reference.json");
  const image::Image rgb = model::testing::read_image(dir + "/image.png");
  const ImageInput input = preprocess(rgb, fixture_options());

  EXPECT_EQ(input.shape, flat<int64_t>(ref["pixel_values_shape"]));
  const auto want = flat<float>(ref["pixel_values"]);
  const auto diff = compare(input.pixel_values, want, 1e-5);
  EXPECT_LE(diff.max, 1e-5);
  EXPECT_EQ(diff.over, 0u);
  RecordProperty("max_abs_diff", model::testing::scientific(diff.max));
  EXPECT_EQ(input.aspect_ratio_id, flat<int32_t>(ref["aspect_ratio_ids"]).at(0));
  EXPECT_EQ(input.aspect_ratio_mask, flat<int32_t>(ref["aspect_ratio_mask"]));
}

TEST(MllamaImage, ChoosesTilesLikeTransformers) {
  // get_optimal_tiled_canvas / get_image_size_fit_to_canvas worked by hand for tile 28, 4 tiles
  // (supported ratios, as (tiles high, tiles wide): 1x1 1x2 1x3 1x4 2x1 2x2 3x1 4x1).
  ImageOptions options;
  options.image_size = 28;
  options.max_image_tiles = 4;
  struct Case {
    int64_t w, h;
    int32_t id;
    int tiles;
  } cases[] = {
      {70, 40, 6, 4},   // nothing upscales: the mildest downscale, 0.8, is 2x2
      {28, 28, 1, 1},   // exact fit
      {100, 20, 4, 4},  // wide: 1x4 at scale 1.12
      {20, 100, 8, 4},  // tall: 4x1
      {50, 20, 2, 2},   // 1x2 and 2x2 both upscale 1.12: the smaller area wins
      {1000, 1000, 6, 4},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.w) + "x" + std::to_string(c.h));
    image::Image rgb{c.w, c.h, std::vector<uint8_t>(size_t(c.w * c.h * 3), 200)};
    const ImageInput input = preprocess(rgb, options);
    EXPECT_EQ(input.aspect_ratio_id, c.id);
    std::vector<int32_t> mask(4, 0);
    for (int t = 0; t < c.tiles; ++t) mask[t] = 1;
    EXPECT_EQ(input.aspect_ratio_mask, mask);
  }
}

TEST(MllamaImage, HandlesTinyAndThinImages) {
  ImageOptions options;
  options.image_size = 28;
  options.max_image_tiles = 4;
  options.mean = {0.5f, 0.5f, 0.5f};
  options.std = {0.5f, 0.5f, 0.5f};
  const float white = (255.0f - 127.5f) / 127.5f, pad = -1.0f;
  const int64_t tile = 28 * 28;

  // 1x1: upscaled to fill one tile; the other tiles are zero.
  const ImageInput one = preprocess(image::Image{1, 1, {255, 255, 255}}, options);
  EXPECT_EQ(one.shape, (std::vector<int64_t>{1, 1, 4, 3, 28, 28}));
  EXPECT_EQ(one.aspect_ratio_id, 1);
  EXPECT_EQ(one.aspect_ratio_mask, (std::vector<int32_t>{1, 0, 0, 0}));
  for (int64_t i = 0; i < 3 * tile; ++i) ASSERT_EQ(one.pixel_values[i], white) << i;
  for (int64_t i = 3 * tile; i < 12 * tile; ++i) ASSERT_EQ(one.pixel_values[i], 0.0f) << i;

  // 1 wide, 4000 high: the 4x1 canvas, resized to 1x112 and padded on the right.
  const ImageInput thin =
      preprocess(image::Image{1, 4000, std::vector<uint8_t>(4000 * 3, 255)}, options);
  EXPECT_EQ(thin.aspect_ratio_id, 8);
  EXPECT_EQ(thin.aspect_ratio_mask, (std::vector<int32_t>{1, 1, 1, 1}));
  for (int t = 0; t < 4; ++t) {
    for (int c = 0; c < 3; ++c) {
      for (int y = 0; y < 28; ++y) {
        for (int x = 0; x < 28; ++x) {
          ASSERT_EQ(thin.pixel_values[((t * 3 + c) * 28 + y) * 28 + x], x == 0 ? white : pad);
        }
      }
    }
  }
}

}  // namespace
}  // namespace corral::model::mllama
