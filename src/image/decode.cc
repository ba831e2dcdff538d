// Image decoding: PNG through stb_image, JPEG through libjpeg-turbo (jpeg.cc), WebP through
// libwebp. Before anything is
// decoded the container is walked (chunks, markers) so that truncation is reported as such and
// the header's size is checked against the limits; then the pixels are decoded into 8-bit RGB
// and the EXIF orientation, if any, is applied as PIL's ImageOps.exif_transpose does.
#include <stb_image.h>
#include <webp/decode.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "image/image.h"
#include "image/jpeg.h"

namespace corral::image {
namespace {

enum class Format { kNone, kPng, kJpeg, kWebp };

constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

Format detect(std::span<const uint8_t> b) {
  if (b.size() >= 8 && std::memcmp(b.data(), kPngSignature, 8) == 0) return Format::kPng;
  if (b.size() >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff) return Format::kJpeg;
  if (b.size() >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 &&
      std::memcmp(b.data() + 8, "WEBP", 4) == 0) {
    return Format::kWebp;
  }
  return Format::kNone;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
uint32_t le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | p[0];
}

// What the container walk found: the size the header claims and the EXIF (TIFF) block, if any.
struct Header {
  int64_t width = 0;
  int64_t height = 0;
  std::span<const uint8_t> exif;
};

// EXIF blocks are TIFF data, sometimes behind the "Exif\0\0" prefix of JPEG's APP1 (PIL strips
// it wherever it appears).
std::span<const uint8_t> strip_exif_prefix(std::span<const uint8_t> exif) {
  if (exif.size() >= 6 && std::memcmp(exif.data(), "Exif\0\0", 6) == 0) return exif.subspan(6);
  return exif;
}

std::string chunk_name(const uint8_t* p) {
  std::string name;
  for (int i = 0; i < 4; ++i) name += (p[i] >= 0x20 && p[i] < 0x7f) ? char(p[i]) : '?';
  return name;
}

// PNG: signature, then chunks (length, type, data, CRC) from IHDR to IEND.
Header walk_png(std::span<const uint8_t> b) {
  Header h;
  size_t pos = 8;
  bool first = true;
  for (;;) {
    if (b.size() - pos < 12) {
      throw Error("truncated PNG: the data ends after " + std::to_string(b.size()) +
                  " bytes, before the IEND chunk");
    }
    const uint32_t length = be32(&b[pos]);
    const std::string type = chunk_name(&b[pos + 4]);
    if (length > 0x7fffffffu)
      throw Error("corrupt PNG: the " + type + " chunk's length is invalid");
    if (b.size() - pos - 12 < length) {
      throw Error("truncated PNG: the " + type + " chunk needs " + std::to_string(length) +
                  " bytes but only " + std::to_string(b.size() - pos - 12) + " remain");
    }
    const uint8_t* data = &b[pos + 8];
    if (first) {
      if (type != "IHDR" || length != 13) throw Error("corrupt PNG: it does not start with IHDR");
      h.width = be32(data);
      h.height = be32(data + 4);
      first = false;
    } else if (type == "eXIf" && h.exif.empty()) {
      h.exif = strip_exif_prefix({data, length});
    } else if (type == "IEND") {
      return h;
    }
    pos += 12 + size_t{length};
  }
}

// JPEG: markers and their segments up to EOI, through the entropy-coded data after each SOS.
Header walk_jpeg(std::span<const uint8_t> b) {
  Header h;
  const size_t n = b.size();
  const auto truncated = [&] {
    return Error("truncated JPEG: the data ends after " + std::to_string(n) +
                 " bytes, before the end-of-image marker");
  };
  size_t pos = 2;
  for (;;) {
    if (pos >= n) throw truncated();
    if (b[pos] != 0xff) {
      throw Error("corrupt JPEG: a marker was expected at byte " + std::to_string(pos));
    }
    while (pos < n && b[pos] == 0xff) ++pos;  // fill bytes
    if (pos >= n) throw truncated();
    const uint8_t marker = b[pos++];
    if (marker == 0xd9) return h;                                        // EOI
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;  // no segment
    if (n - pos < 2) throw truncated();
    const size_t length = (size_t{b[pos]} << 8) | b[pos + 1];
    if (length < 2) throw Error("corrupt JPEG: a segment length is invalid");
    if (n - pos < length) throw truncated();
    std::span<const uint8_t> segment = b.subspan(pos + 2, length - 2);
    pos += length;
    const bool is_sof =
        marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (is_sof && h.width == 0 && segment.size() >= 5) {
      h.height = (int64_t{segment[1]} << 8) | segment[2];
      h.width = (int64_t{segment[3]} << 8) | segment[4];
    } else if (marker == 0xe1 && h.exif.empty() && segment.size() >= 6 &&
               std::memcmp(segment.data(), "Exif\0\0", 6) == 0) {
      h.exif = segment.subspan(6);
    } else if (marker == 0xda) {
      // Entropy-coded data: runs to the next marker that is neither a stuffed 0xff00 nor a
      // restart marker.
      for (;;) {
        if (n - pos < 2) throw truncated();
        if (b[pos] != 0xff) {
          ++pos;
          continue;
        }
        const uint8_t next = b[pos + 1];
        if (next == 0x00 || (next >= 0xd0 && next <= 0xd7)) {
          pos += 2;
        } else if (next == 0xff) {
          ++pos;
        } else {
          break;
        }
      }
    }
  }
}

// WebP: a RIFF container whose chunks may include EXIF.
std::span<const uint8_t> webp_exif(std::span<const uint8_t> b) {
  const size_t riff_end = std::min<size_t>(b.size(), size_t{le32(&b[4])} + 8);
  size_t pos = 12;
  while (riff_end >= pos + 8) {
    const size_t length = le32(&b[pos + 4]);
    if (riff_end - pos - 8 < length) break;
    if (std::memcmp(&b[pos], "EXIF", 4) == 0) return strip_exif_prefix(b.subspan(pos + 8, length));
    pos += 8 + length + (length & 1);
  }
  return {};
}

// The EXIF orientation (tag 0x0112 of IFD0), 1 when absent or invalid.
int exif_orientation(std::span<const uint8_t> tiff) {
  if (tiff.size() < 8) return 1;
  bool little;
  if (tiff[0] == 'I' && tiff[1] == 'I') {
    little = true;
  } else if (tiff[0] == 'M' && tiff[1] == 'M') {
    little = false;
  } else {
    return 1;
  }
  const auto u16 = [&](size_t at) -> uint32_t {
    return little ? (tiff[at] | (tiff[at + 1] << 8)) : ((tiff[at] << 8) | tiff[at + 1]);
  };
  const auto u32 = [&](size_t at) { return little ? le32(&tiff[at]) : be32(&tiff[at]); };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);
  if (ifd > tiff.size() || tiff.size() - ifd < 2) return 1;
  const size_t count = u16(ifd);
  for (size_t i = 0; i < count; ++i) {
    const size_t entry = ifd + 2 + 12 * i;
    if (tiff.size() < entry + 12) break;
    if (u16(entry) != 0x0112) continue;
    const uint32_t type = u16(entry + 2);
    uint32_t value = 0;
    if (type == 3) {
      value = u16(entry + 8);
    } else if (type == 4) {
      value = u32(entry + 8);
    }
    return (value >= 1 && value <= 8) ? int(value) : 1;
  }
  return 1;
}

// PIL's exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 270 (90
// clockwise), 7 transverse, 8 rotate 90 (counter-clockwise).
Image orient(Image in, int orientation) {
  if (orientation == 1) return in;
  const int64_t w = in.width, h = in.height;
  const bool swap = orientation >= 5;
  Image out;
  out.width = swap ? h : w;
  out.height = swap ? w : h;
  out.rgb.resize(in.rgb.size());
  for (int64_t y = 0; y < out.height; ++y) {
    for (int64_t x = 0; x < out.width; ++x) {
      int64_t sx = x, sy = y;
      switch (orientation) {
        case 2:
          sx = w - 1 - x;
          break;
        case 3:
          sx = w - 1 - x;
          sy = h - 1 - y;
          break;
        case 4:
          sy = h - 1 - y;
          break;
        case 5:
          sx = y;
          sy = x;
          break;
        case 6:
          sx = y;
          sy = h - 1 - x;
          break;
        case 7:
          sx = w - 1 - y;
          sy = h - 1 - x;
          break;
        case 8:
          sx = w - 1 - y;
          sy = x;
          break;
      }
      std::memcpy(&out.rgb[(y * out.width + x) * 3], &in.rgb[(sy * w + sx) * 3], 3);
    }
  }
  return out;
}

void check_size(const char* format, int64_t width, int64_t height, const Limits& limits) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width <= 0 || height <= 0) {
    throw Error(std::string("corrupt ") + format + ": the image is " + size + " pixels");
  }
  if (width < limits.min_side || height < limits.min_side) {
    throw Error("the image is " + size + " pixels; each side must be at least " +
                std::to_string(limits.min_side) + " pixels");
  }
  if (width > limits.max_side || height > limits.max_side) {
    throw Error("the image is " + size + " pixels, more than the limit of " +
                std::to_string(limits.max_side) + " pixels on a side");
  }
  if (width * height > limits.max_pixels) {
    throw Error("the image is " + size + " pixels, more than the limit of " +
                std::to_string(limits.max_pixels) + " pixels");
  }
}

Image decode_stb(std::span<const uint8_t> b, const char* format) {
  int w = 0, h = 0, channels = 0;
  stbi_uc* pixels = stbi_load_from_memory(b.data(), int(b.size()), &w, &h, &channels, 3);
  if (pixels == nullptr) {
    const char* reason = stbi_failure_reason();
    throw Error(std::string("corrupt ") + format + ": " + (reason ? reason : "cannot decode"));
  }
  Image image;
  image.width = w;
  image.height = h;
  image.rgb.assign(pixels, pixels + size_t(w) * size_t(h) * 3);
  stbi_image_free(pixels);
  return image;
}

Image decode_webp(std::span<const uint8_t> b, const Limits& limits) {
  WebPDecoderConfig config;
  if (!WebPInitDecoderConfig(&config)) throw Error("WebP decoder unavailable");
  const VP8StatusCode status = WebPGetFeatures(b.data(), b.size(), &config.input);
  if (status == VP8_STATUS_NOT_ENOUGH_DATA) throw Error("truncated WebP: the header is incomplete");
  if (status != VP8_STATUS_OK) throw Error("corrupt WebP: the header cannot be read");
  if (config.input.has_animation) throw Error("animated WebP images are not supported");
  check_size("WebP", config.input.width, config.input.height, limits);
  Image image;
  image.width = config.input.width;
  image.height = config.input.height;
  image.rgb.resize(size_t(image.width) * size_t(image.height) * 3);
  config.output.colorspace = MODE_RGB;
  config.output.is_external_memory = 1;
  config.output.u.RGBA.rgba = image.rgb.data();
  config.output.u.RGBA.stride = int(image.width * 3);
  config.output.u.RGBA.size = image.rgb.size();
  const VP8StatusCode decoded = WebPDecode(b.data(), b.size(), &config);
  WebPFreeDecBuffer(&config.output);
  if (decoded == VP8_STATUS_NOT_ENOUGH_DATA) {
    throw Error("truncated WebP: the data ends after " + std::to_string(b.size()) + " bytes");
  }
  if (decoded != VP8_STATUS_OK) {
    throw Error("corrupt WebP: decoding failed (status " + std::to_string(int(decoded)) + ")");
  }
  return image;
}

}  // namespace

bool looks_like_image(std::span<const uint8_t> bytes) { return detect(bytes) != Format::kNone; }

Image decode(std::span<const uint8_t> bytes, const Limits& limits) {
  if (bytes.empty()) throw Error("not an image (PNG, JPEG or WebP expected): the data is empty");
  if (bytes.size() > limits.max_bytes || bytes.size() > size_t{INT_MAX}) {
    throw Error("the image file is " + std::to_string(bytes.size()) +
                " bytes, more than the limit of " + std::to_string(limits.max_bytes) + " bytes");
  }
  Image image;
  std::span<const uint8_t> exif;
  switch (detect(bytes)) {
    case Format::kNone:
      throw Error("not an image (PNG, JPEG or WebP expected)");
    case Format::kPng: {
      const Header h = walk_png(bytes);
      check_size("PNG", h.width, h.height, limits);
      image = decode_stb(bytes, "PNG");
      exif = h.exif;
      break;
    }
    case Format::kJpeg: {
      const Header h = walk_jpeg(bytes);
      if (h.width == 0) throw Error("corrupt JPEG: no frame header (SOF)");
      check_size("JPEG", h.width, h.height, limits);
      image = decode_jpeg(bytes, h.width, h.height);
      exif = h.exif;
      break;
    }
    case Format::kWebp:
      image = decode_webp(bytes, limits);
      exif = webp_exif(bytes);
      break;
  }
  return orient(std::move(image), exif_orientation(exif));
}

}  // namespace corral::image
