// JPEG decoding for image::decode (the container has been walked and its size checked).
#pragma once

#include <cstdint>
#include <span>

#include "image/image.h"

namespace corral::image {

// The pixels of a JPEG whose frame header says width x height, in 8-bit RGB. Throws Error.
Image decode_jpeg(std::span<const uint8_t> bytes, int64_t width, int64_t height);

}  // namespace corral::image
