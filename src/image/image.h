// Images users send to vision models: decoded from PNG, JPEG (EXIF orientation applied) or WebP
// into 8-bit RGB as PIL's Image.convert("RGB") makes it (alpha dropped, grayscale and palettes
// expanded). Sizes are checked from the header before anything is decoded.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace corral::image {

// An image that cannot be used (not an image, truncated, too large): the message says which and
// why, for a 400 or a CLI error.
class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct Limits {
  size_t max_bytes = size_t{32} << 20;     // of the encoded file
  int64_t max_pixels = int64_t{50} << 20;  // width * height, checked from the header
  int64_t max_side = 32768;                // of either side
  // Of either side: an image one pixel wide (1x1, 1x4000) carries nothing a vision model can
  // use, and its processor would stretch a line into tiles.
  int64_t min_side = 2;
};

// 8-bit RGB, rows top to bottom, pixels left to right: rgb[(y * width + x) * 3 + c].
struct Image {
  int64_t width = 0;
  int64_t height = 0;
  std::vector<uint8_t> rgb;
};

// Decodes PNG, JPEG or WebP (recognized by content, not name). Throws Error.
Image decode(std::span<const uint8_t> bytes, const Limits& limits = {});

// Whether the bytes start like an image format decode() reads.
bool looks_like_image(std::span<const uint8_t> bytes);

}  // namespace corral::image
