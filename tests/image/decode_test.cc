// image::decode: PNG, JPEG and WebP made here (stb_image_write, libwebp's encoder) decode to the
// pixels written, in 8-bit RGB as PIL's convert("RGB") gives them; EXIF orientation is applied
// as exif_transpose does; hostile input is refused with a message, never a crash.
#include <gtest/gtest.h>
#include <stb_image_write.h>
#include <webp/encode.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "image/image.h"

// stb_image_write's deflate, exported by Debian's libstb though its header declares it only
// inside the implementation section.
extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len,
                                             int quality);

namespace corral::image {
namespace {

using Bytes = std::vector<uint8_t>;

std::vector<uint8_t> random_pixels(int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(static_cast<size_t>(count));
  for (auto& b : v) b = uint8_t(rng());
  return v;
}

void append(void* context, void* data, int size) {
  auto* out = static_cast<Bytes*>(context);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

Bytes png(const std::vector<uint8_t>& pixels, int w, int h, int channels) {
  Bytes out;
  EXPECT_NE(stbi_write_png_to_func(append, &out, w, h, channels, pixels.data(), w * channels), 0);
  return out;
}

Bytes jpeg(const std::vector<uint8_t>& pixels, int w, int h, int channels, int quality = 95) {
  Bytes out;
  EXPECT_NE(stbi_write_jpg_to_func(append, &out, w, h, channels, pixels.data(), quality), 0);
  return out;
}

Bytes webp(const std::vector<uint8_t>& pixels, int w, int h, int channels, bool lossless) {
  uint8_t* data = nullptr;
  size_t size = 0;
  if (channels == 3) {
    size = lossless ? WebPEncodeLosslessRGB(pixels.data(), w, h, w * 3, &data)
                    : WebPEncodeRGB(pixels.data(), w, h, w * 3, 90, &data);
  } else {
    size = lossless ? WebPEncodeLosslessRGBA(pixels.data(), w, h, w * 4, &data)
                    : WebPEncodeRGBA(pixels.data(), w, h, w * 4, 90, &data);
  }
  EXPECT_GT(size, 0u);
  Bytes out(data, data + size);
  WebPFree(data);
  return out;
}

uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
  }
  return ~c;
}

void put_be32(Bytes& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

Bytes png_chunk(const char* type, const Bytes& data) {
  Bytes out;
  put_be32(out, uint32_t(data.size()));
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  put_be32(out, crc32(out.data() + 4, out.size() - 4));
  return out;
}

// A PNG from its parts: IHDR for the size and color type, then `chunks`, then IEND.
Bytes build_png(uint32_t w, uint32_t h, uint8_t color_type, const std::vector<Bytes>& chunks) {
  Bytes out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  Bytes ihdr;
  put_be32(ihdr, w);
  put_be32(ihdr, h);
  ihdr.insert(ihdr.end(), {8, color_type, 0, 0, 0});
  for (const Bytes& c : {png_chunk("IHDR", ihdr)}) out.insert(out.end(), c.begin(), c.end());
  for (const Bytes& c : chunks) out.insert(out.end(), c.begin(), c.end());
  const Bytes iend = png_chunk("IEND", {});
  out.insert(out.end(), iend.begin(), iend.end());
  return out;
}

Bytes zlib(const Bytes& raw) {
  int size = 0;
  unsigned char* data =
      stbi_zlib_compress(const_cast<unsigned char*>(raw.data()), int(raw.size()), &size, 9);
  Bytes out(data, data + size);
  std::free(data);
  return out;
}

std::string error_of(const Bytes& bytes, const Limits& limits = {}) {
  try {
    decode(bytes, limits);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ImageDecode, PngRoundTripIsExact) {
  const auto pixels = random_pixels(37 * 23 * 3, 1);
  const Image image = decode(png(pixels, 37, 23, 3));
  EXPECT_EQ(image.width, 37);
  EXPECT_EQ(image.height, 23);
  EXPECT_EQ(image.rgb, pixels);
}

TEST(ImageDecode, PngGrayscaleIsReplicated) {
  const auto gray = random_pixels(9 * 5, 2);
  const Image image = decode(png(gray, 9, 5, 1));
  ASSERT_EQ(image.rgb.size(), gray.size() * 3);
  for (size_t i = 0; i < gray.size(); ++i) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(image.rgb[i * 3 + c], gray[i]) << i;
  }
}

TEST(ImageDecode, PngAlphaIsDroppedNotComposited) {
  auto rgba = random_pixels(8 * 6 * 4, 3);
  for (size_t i = 0; i < rgba.size(); i += 4) rgba[i + 3] = uint8_t(i % 3 == 0 ? 0 : 77);
  const Image image = decode(png(rgba, 8, 6, 4));
  ASSERT_EQ(image.rgb.size(), size_t(8 * 6 * 3));
  for (size_t p = 0; p < 8 * 6; ++p) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(image.rgb[p * 3 + c], rgba[p * 4 + c]) << p;
  }
  // Gray + alpha: gray replicated, alpha dropped.
  auto la = random_pixels(5 * 4 * 2, 4);
  const Image gray = decode(png(la, 5, 4, 2));
  for (size_t p = 0; p < 5 * 4; ++p) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(gray.rgb[p * 3 + c], la[p * 2]) << p;
  }
}

TEST(ImageDecode, PngPaletteIsExpanded) {
  const Bytes palette = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
  const Bytes trns = {255, 0, 128, 255};  // transparency is dropped like any alpha
  const uint8_t index[2][3] = {{0, 1, 2}, {3, 2, 1}};
  Bytes raw;
  for (const auto& row : index) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), row, row + 3);
  }
  const Image image = decode(build_png(
      3, 2, 3,
      {png_chunk("PLTE", palette), png_chunk("tRNS", trns), png_chunk("IDAT", zlib(raw))}));
  ASSERT_EQ(image.width, 3);
  ASSERT_EQ(image.height, 2);
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 3; ++x) {
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(image.rgb[(y * 3 + x) * 3 + c], palette[index[y][x] * 3 + c]) << x << "," << y;
      }
    }
  }
}

TEST(ImageDecode, JpegRoundTripIsClose) {
  // A smooth image survives JPEG at quality 95 within a few levels.
  std::vector<uint8_t> pixels(40 * 24 * 3);
  for (int y = 0; y < 24; ++y) {
    for (int x = 0; x < 40; ++x) {
      pixels[(y * 40 + x) * 3] = uint8_t(x * 6);
      pixels[(y * 40 + x) * 3 + 1] = uint8_t(y * 10);
      pixels[(y * 40 + x) * 3 + 2] = uint8_t(128);
    }
  }
  const Image image = decode(jpeg(pixels, 40, 24, 3));
  ASSERT_EQ(image.width, 40);
  ASSERT_EQ(image.height, 24);
  double total = 0;
  for (size_t i = 0; i < pixels.size(); ++i) total += std::abs(image.rgb[i] - pixels[i]);
  EXPECT_LT(total / double(pixels.size()), 3.0);
}

TEST(ImageDecode, JpegGrayscaleIsReplicated) {
  const auto gray = random_pixels(16 * 8, 5);
  const Image image = decode(jpeg(gray, 16, 8, 1));
  ASSERT_EQ(image.rgb.size(), size_t(16 * 8 * 3));
  for (size_t p = 0; p < 16 * 8; ++p) {
    ASSERT_EQ(image.rgb[p * 3], image.rgb[p * 3 + 1]);
    ASSERT_EQ(image.rgb[p * 3], image.rgb[p * 3 + 2]);
  }
}

TEST(ImageDecode, WebpLosslessRoundTripIsExact) {
  const auto pixels = random_pixels(21 * 13 * 3, 6);
  const Image image = decode(webp(pixels, 21, 13, 3, true));
  EXPECT_EQ(image.width, 21);
  EXPECT_EQ(image.height, 13);
  EXPECT_EQ(image.rgb, pixels);

  // (Alpha 1, not 0: the lossless encoder clears the colour of fully transparent pixels.)
  auto rgba = random_pixels(7 * 5 * 4, 7);
  for (size_t i = 3; i < rgba.size(); i += 8) rgba[i] = 1;
  const Image dropped = decode(webp(rgba, 7, 5, 4, true));
  for (size_t p = 0; p < 7 * 5; ++p) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(dropped.rgb[p * 3 + c], rgba[p * 4 + c]) << p;
  }
}

TEST(ImageDecode, WebpLossyDecodes) {
  std::vector<uint8_t> pixels(32 * 32 * 3, 100);
  const Image image = decode(webp(pixels, 32, 32, 3, false));
  ASSERT_EQ(image.width, 32);
  ASSERT_EQ(image.height, 32);
  for (uint8_t v : image.rgb) ASSERT_NEAR(v, 100, 3);
}

// --- EXIF orientation ---------------------------------------------------------------------

// A TIFF block with IFD0 holding one entry: Orientation (0x0112, SHORT) = `orientation`.
Bytes tiff_orientation(int orientation, bool little_endian) {
  Bytes t;
  const auto u16 = [&](uint32_t v) {
    if (little_endian) {
      t.insert(t.end(), {uint8_t(v), uint8_t(v >> 8)});
    } else {
      t.insert(t.end(), {uint8_t(v >> 8), uint8_t(v)});
    }
  };
  const auto u32 = [&](uint32_t v) {
    if (little_endian) {
      t.insert(t.end(), {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)});
    } else {
      t.insert(t.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)});
    }
  };
  t.insert(t.end(), little_endian ? "II" : "MM", (little_endian ? "II" : "MM") + 2);
  u16(42);
  u32(8);                                        // IFD0 right after the header
  u16(2);                                        // two entries: an unrelated one first
  u16(0x010f), u16(2), u32(4), u32(0x41424300);  // Make = "ABC"
  u16(0x0112), u16(3), u32(1), u16(uint32_t(orientation)), u16(0);
  u32(0);  // no next IFD
  return t;
}

Bytes with_app1_exif(const Bytes& jpg, const Bytes& tiff) {
  Bytes segment = {0xff, 0xe1};
  const size_t length = 2 + 6 + tiff.size();
  segment.push_back(uint8_t(length >> 8));
  segment.push_back(uint8_t(length));
  segment.insert(segment.end(), {'E', 'x', 'i', 'f', 0, 0});
  segment.insert(segment.end(), tiff.begin(), tiff.end());
  Bytes out(jpg.begin(), jpg.begin() + 2);  // SOI
  out.insert(out.end(), segment.begin(), segment.end());
  out.insert(out.end(), jpg.begin() + 2, jpg.end());
  return out;
}

// Where exif_transpose moves the pixel at (x, y) of a w x h image, for each orientation.
Image expected_orientation(const Image& in, int orientation) {
  const int64_t w = in.width, h = in.height;
  Image out;
  out.width = orientation >= 5 ? h : w;
  out.height = orientation >= 5 ? w : h;
  out.rgb.resize(in.rgb.size());
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      int64_t nx = x, ny = y;
      switch (orientation) {
        case 2:
          nx = w - 1 - x;
          break;  // mirror
        case 3:
          nx = w - 1 - x, ny = h - 1 - y;
          break;  // rotate 180
        case 4:
          ny = h - 1 - y;
          break;  // flip
        case 5:
          nx = y, ny = x;
          break;  // transpose
        case 6:
          nx = h - 1 - y, ny = x;
          break;  // rotate 90 clockwise
        case 7:
          nx = h - 1 - y, ny = w - 1 - x;
          break;  // transverse
        case 8:
          nx = y, ny = w - 1 - x;
          break;  // rotate 90 counter-clockwise
      }
      for (int c = 0; c < 3; ++c) {
        out.rgb[(ny * out.width + nx) * 3 + c] = in.rgb[(y * w + x) * 3 + c];
      }
    }
  }
  return out;
}

TEST(ImageDecode, JpegExifOrientationIsApplied) {
  const auto pixels = random_pixels(5 * 3 * 3, 8);
  const Bytes plain = jpeg(pixels, 5, 3, 3);
  const Image upright = decode(plain);
  for (bool little : {true, false}) {
    for (int orientation = 1; orientation <= 8; ++orientation) {
      SCOPED_TRACE((little ? "II, orientation " : "MM, orientation ") +
                   std::to_string(orientation));
      const Image image = decode(with_app1_exif(plain, tiff_orientation(orientation, little)));
      const Image expected = expected_orientation(upright, orientation);
      EXPECT_EQ(image.width, expected.width);
      EXPECT_EQ(image.height, expected.height);
      EXPECT_EQ(image.rgb, expected.rgb);
    }
  }
  // Out-of-range orientations and a broken TIFF block are ignored.
  EXPECT_EQ(decode(with_app1_exif(plain, tiff_orientation(9, true))).rgb, upright.rgb);
  EXPECT_EQ(decode(with_app1_exif(plain, {'I', 'I', 42, 0, 0xff, 0xff, 0xff, 0x7f})).rgb,
            upright.rgb);
}

TEST(ImageDecode, PngExifOrientationIsApplied) {
  const auto pixels = random_pixels(4 * 2 * 3, 9);
  Bytes raw;
  for (int y = 0; y < 2; ++y) {
    raw.push_back(0);
    raw.insert(raw.end(), pixels.begin() + y * 12, pixels.begin() + (y + 1) * 12);
  }
  const Image image = decode(build_png(
      4, 2, 2, {png_chunk("IDAT", zlib(raw)), png_chunk("eXIf", tiff_orientation(6, false))}));
  const Image expected = expected_orientation(Image{4, 2, pixels}, 6);
  EXPECT_EQ(image.width, 2);
  EXPECT_EQ(image.height, 4);
  EXPECT_EQ(image.rgb, expected.rgb);
}

void put_le32(Bytes& out, uint32_t v) {
  for (int s = 0; s < 32; s += 8) out.push_back(uint8_t(v >> s));
}

// A simple-format WebP rewrapped in the extended format (VP8X) with an EXIF chunk.
Bytes with_webp_exif(const Bytes& simple, int w, int h, const Bytes& tiff) {
  Bytes body = {'W', 'E', 'B', 'P', 'V', 'P', '8', 'X'};
  put_le32(body, 10);
  body.insert(body.end(), {0x08, 0, 0, 0});  // flags: EXIF
  for (int v : {w - 1, h - 1})
    body.insert(body.end(), {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16)});
  body.insert(body.end(), simple.begin() + 12, simple.end());  // the VP8L chunk
  body.insert(body.end(), {'E', 'X', 'I', 'F'});
  put_le32(body, uint32_t(tiff.size()));
  body.insert(body.end(), tiff.begin(), tiff.end());
  if (tiff.size() & 1) body.push_back(0);
  Bytes out = {'R', 'I', 'F', 'F'};
  put_le32(out, uint32_t(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

TEST(ImageDecode, WebpExifOrientationIsApplied) {
  const auto pixels = random_pixels(5 * 3 * 3, 16);
  const Bytes file = with_webp_exif(webp(pixels, 5, 3, 3, true), 5, 3, tiff_orientation(8, true));
  const Image image = decode(file);
  const Image expected = expected_orientation(Image{5, 3, pixels}, 8);
  EXPECT_EQ(image.width, 3);
  EXPECT_EQ(image.height, 5);
  EXPECT_EQ(image.rgb, expected.rgb);
}

// --- sizes and hostile input --------------------------------------------------------------

TEST(ImageDecode, ImagesOnePixelWideAreRefusedByDefault) {
  EXPECT_NE(error_of(png({1, 2, 3}, 1, 1, 3)).find("1x1 pixels; each side must be at least 2"),
            std::string::npos)
      << error_of(png({1, 2, 3}, 1, 1, 3));
  const auto tall = random_pixels(4000 * 3, 10);
  EXPECT_NE(error_of(png(tall, 1, 4000, 3)).find("1x4000"), std::string::npos);
  EXPECT_NE(error_of(webp(tall, 4000, 1, 3, true)).find("4000x1"), std::string::npos);
  const Image two = decode(png(random_pixels(2 * 2 * 3, 3), 2, 2, 3));
  EXPECT_EQ(two.width, 2);
}

TEST(ImageDecode, TinyAndThinImagesDecodeWhenAllowed) {
  Limits any;
  any.min_side = 1;
  const Image one = decode(png({1, 2, 3}, 1, 1, 3), any);
  EXPECT_EQ(one.width, 1);
  EXPECT_EQ(one.height, 1);
  EXPECT_EQ(one.rgb, (std::vector<uint8_t>{1, 2, 3}));

  const auto tall = random_pixels(4000 * 3, 10);
  const Image thin = decode(png(tall, 1, 4000, 3), any);
  EXPECT_EQ(thin.width, 1);
  EXPECT_EQ(thin.height, 4000);
  EXPECT_EQ(thin.rgb, tall);
  const Image wide = decode(webp(tall, 4000, 1, 3, true), any);
  EXPECT_EQ(wide.width, 4000);
  EXPECT_EQ(wide.rgb, tall);
}

TEST(ImageDecode, NotAnImage) {
  EXPECT_NE(error_of({}).find("not an image"), std::string::npos) << error_of({});
  const std::string text = "hello, this is text";
  const std::string e = error_of(Bytes(text.begin(), text.end()));
  EXPECT_EQ(e, "not an image (PNG, JPEG or WebP expected)");
  EXPECT_FALSE(looks_like_image(Bytes(text.begin(), text.end())));
  EXPECT_TRUE(looks_like_image(png({1, 2, 3}, 1, 1, 3)));
  EXPECT_TRUE(looks_like_image(jpeg({1, 2, 3}, 1, 1, 3)));
  EXPECT_TRUE(looks_like_image(webp({1, 2, 3}, 1, 1, 3, true)));
}

TEST(ImageDecode, TruncatedFilesAreRefused) {
  const auto pixels = random_pixels(30 * 20 * 3, 11);
  const Bytes p = png(pixels, 30, 20, 3);
  for (size_t cut : {size_t{8}, size_t{20}, p.size() / 2, p.size() - 1}) {
    const std::string e = error_of(Bytes(p.begin(), p.begin() + cut));
    EXPECT_EQ(e.rfind("truncated PNG: ", 0), 0u) << cut << ": " << e;
  }
  const Bytes j = jpeg(pixels, 30, 20, 3);
  for (size_t cut : {size_t{3}, size_t{30}, j.size() / 2, j.size() - 2}) {
    const std::string e = error_of(Bytes(j.begin(), j.begin() + cut));
    EXPECT_EQ(e.rfind("truncated JPEG: ", 0), 0u) << cut << ": " << e;
  }
  const Bytes w = webp(pixels, 30, 20, 3, false);
  for (size_t cut : {size_t{12}, size_t{40}, w.size() / 2, w.size() - 1}) {
    const std::string e = error_of(Bytes(w.begin(), w.begin() + cut));
    EXPECT_NE(e.find("WebP"), std::string::npos) << cut << ": " << e;
    EXPECT_NE(e, "(no error)") << cut;
  }
}

TEST(ImageDecode, HugeHeadersAreRefusedBeforeDecoding) {
  // A PNG that claims 50000x50000 pixels.
  const std::string e = error_of(build_png(50000, 50000, 2, {png_chunk("IDAT", zlib({0}))}));
  EXPECT_EQ(e, "the image is 50000x50000 pixels, more than the limit of 32768 pixels on a side");

  // A decompression bomb: a small file whose rows of zeros inflate to 20000x20000 pixels.
  Bytes rows(size_t(20000 * 3 + 1) * 32, 0);
  const Bytes bomb = build_png(20000, 20000, 2, {png_chunk("IDAT", zlib(rows))});
  EXPECT_LT(bomb.size(), size_t{32} << 10);
  EXPECT_EQ(error_of(bomb),
            "the image is 20000x20000 pixels, more than the limit of 52428800 pixels");

  // A JPEG whose frame header claims 60000x60000.
  Bytes j = jpeg(random_pixels(8 * 8 * 3, 12), 8, 8, 3);
  bool patched = false;
  for (size_t i = 2; i + 9 < j.size(); ++i) {
    if (j[i] == 0xff && j[i + 1] == 0xc0) {
      j[i + 5] = 0xea, j[i + 6] = 0x60, j[i + 7] = 0xea, j[i + 8] = 0x60;
      patched = true;
      break;
    }
  }
  ASSERT_TRUE(patched);
  EXPECT_NE(error_of(j).find("60000x60000 pixels, more than the limit"), std::string::npos)
      << error_of(j);

  // Limits the caller sets.
  const Bytes small = png(random_pixels(64 * 64 * 3, 13), 64, 64, 3);
  Limits limits;
  limits.max_pixels = 1000;
  EXPECT_EQ(error_of(small, limits),
            "the image is 64x64 pixels, more than the limit of 1000 pixels");
  limits = {};
  limits.max_bytes = 100;
  EXPECT_EQ(error_of(small, limits), "the image file is " + std::to_string(small.size()) +
                                         " bytes, more than the limit of 100 bytes");
}

TEST(ImageDecode, CorruptedBytesNeverCrash) {
  const auto pixels = random_pixels(24 * 16 * 3, 14);
  const std::vector<Bytes> files = {png(pixels, 24, 16, 3), jpeg(pixels, 24, 16, 3),
                                    webp(pixels, 24, 16, 3, false), webp(pixels, 24, 16, 3, true)};
  std::mt19937 rng(15);
  int decoded = 0, refused = 0;
  for (const Bytes& file : files) {
    for (int round = 0; round < 150; ++round) {
      Bytes bad = file;
      const int flips = 1 + int(rng() % 8);
      for (int k = 0; k < flips; ++k) bad[rng() % bad.size()] = uint8_t(rng());
      try {
        const Image image = decode(bad);
        ASSERT_EQ(image.rgb.size(), size_t(image.width * image.height * 3));
        ++decoded;
      } catch (const Error&) {
        ++refused;
      }
    }
  }
  EXPECT_EQ(decoded + refused, 600);
}

}  // namespace
}  // namespace corral::image
