// image::resize: properties of the antialiased int16 fixed-point resampler (the reference
// values themselves are checked through the image processors' tests).
#include <gtest/gtest.h>

#include <random>

#include "image/resample.h"

namespace corral::image {
namespace {

Image solid(int64_t w, int64_t h, uint8_t r, uint8_t g, uint8_t b) {
  Image image{w, h, {}};
  for (int64_t i = 0; i < w * h; ++i) image.rgb.insert(image.rgb.end(), {r, g, b});
  return image;
}

TEST(ImageResample, SolidColorsStaySolid) {
  for (Filter filter : {Filter::kBilinear, Filter::kBicubic}) {
    for (auto [w, h] : {std::pair{1, 1}, {3, 2}, {28, 28}, {7, 300}, {1000, 3}}) {
      const Image out = resize(solid(37, 23, 0, 128, 255), w, h, filter);
      ASSERT_EQ(out.width, w);
      ASSERT_EQ(out.height, h);
      for (int64_t p = 0; p < w * h; ++p) {
        ASSERT_EQ(out.rgb[p * 3], 0);
        ASSERT_EQ(out.rgb[p * 3 + 1], 128);
        ASSERT_EQ(out.rgb[p * 3 + 2], 255);
      }
    }
  }
}

TEST(ImageResample, SameSizeIsIdentityAndOneAxisOnly) {
  Image image{5, 4, std::vector<uint8_t>(5 * 4 * 3)};
  std::mt19937 rng(1);
  for (auto& v : image.rgb) v = uint8_t(rng());
  EXPECT_EQ(resize(image, 5, 4, Filter::kBicubic).rgb, image.rgb);
  // Only the height changes: each column is resampled on its own.
  const Image taller = resize(image, 5, 9, Filter::kBilinear);
  for (int64_t x = 0; x < 5; ++x) {
    Image column{1, 4, {}};
    for (int64_t y = 0; y < 4; ++y) {
      column.rgb.insert(column.rgb.end(), &image.rgb[(y * 5 + x) * 3],
                        &image.rgb[(y * 5 + x) * 3 + 3]);
    }
    const Image expected = resize(column, 1, 9, Filter::kBilinear);
    for (int64_t y = 0; y < 9; ++y) {
      for (int c = 0; c < 3; ++c) {
        ASSERT_EQ(taller.rgb[(y * 5 + x) * 3 + c], expected.rgb[y * 3 + c]);
      }
    }
  }
}

TEST(ImageResample, HalvingAveragesPairs) {
  // Bilinear at scale 2 has support 2: output i is centered at input 2i + 1 and reads inputs
  // 2i-1..2i+2 with weights 1:3:3:1, clipped at the borders and renormalized.
  Image row{4, 1, {}};
  for (uint8_t v : {0, 100, 200, 40}) row.rgb.insert(row.rgb.end(), {v, v, v});
  const Image half = resize(row, 2, 1, Filter::kBilinear);
  EXPECT_EQ(half.rgb[0], 71);   // (3*0 + 3*100 + 1*200) / 7 = 71.4
  EXPECT_EQ(half.rgb[3], 117);  // (1*100 + 3*200 + 3*40) / 7 = 117.1
}

TEST(ImageResample, RefusesEmptySizes) {
  EXPECT_THROW(resize(solid(3, 3, 1, 2, 3), 0, 3, Filter::kBilinear), Error);
  EXPECT_THROW(resize(Image{}, 3, 3, Filter::kBilinear), Error);
}

}  // namespace
}  // namespace corral::image
