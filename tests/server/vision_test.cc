// Images through `corral serve` in-process (run under ASan in CI): hostile images — truncated PNG
// and JPEG, a 50000x50000 header, a decompression bomb, not an image, invalid base64, 1x1 and
// 1x4000 images — each get a 400 that says what is wrong, and the next request is served; a
// vision model's memory in /api/ps includes its encoder cache.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stb_image_write.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "convert/convert.h"
#include "running_server.h"
#include "server/images.h"
#include "store/base64.h"
#include "store/temp_store.h"
#include "testdata.h"

namespace corral::server {
namespace {

using Json = nlohmann::json;

uint32_t crc32(const std::string& bytes) {
  uint32_t c = ~0u;
  for (unsigned char b : bytes) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string chunk(const std::string& type, const std::string& data) {
  return be32(static_cast<uint32_t>(data.size())) + type + data + be32(crc32(type + data));
}

// A PNG whose header claims width x height over a tiny (empty-image) data stream.
std::string png_claiming(uint32_t width, uint32_t height) {
  std::string ihdr = be32(width) + be32(height) + std::string("\x08\x02\x00\x00\x00", 5);
  // A zlib stream of a few stored zero bytes: nowhere near the claimed size.
  const std::string idat("\x78\x01\x01\x04\x00\xfb\xff\x00\x00\x00\x00\x00\x04\x00\x01", 15);
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", idat) +
         chunk("IEND", "");
}

void append(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

std::string encode(int w, int h, bool jpeg) {
  std::vector<unsigned char> rgb(static_cast<size_t>(w * h * 3));
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<unsigned char>(i * 7);
  std::string out;
  if (jpeg) {
    stbi_write_jpg_to_func(append, &out, w, h, 3, rgb.data(), 90);
  } else {
    stbi_write_png_to_func(append, &out, w, h, 3, rgb.data(), w * 3);
  }
  return out;
}

class ServerVision : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = corral::testing::testdata_path("reference/tiny-qwen2vl");
    store::Store st(dir_.path() / "models");
    store::Modelfile mf;
    mf.from = dir;
    store::CreateOptions co;
    co.quantize = "F32";
    store::create_model(st, store::ModelName::parse("vl"), mf, dir, co);
    create_stories(st);
    ServerOptions o;
    o.scheduler.num_parallel = 1;
    o.scheduler.default_num_ctx = 256;
    o.models = dir_.path() / "models";
    running_ = std::make_unique<RunningServer>(std::move(o));
  }

  httplib::Result chat(const std::string& model, const std::string& image_base64) {
    httplib::Client c("127.0.0.1", running_->port());
    c.set_read_timeout(60);
    const Json body = {
        {"model", model},
        {"stream", false},
        {"options", {{"num_predict", 3}, {"temperature", 0}}},
        {"messages", {{{"role", "user"}, {"content", "look"}, {"images", {image_base64}}}}}};
    return c.Post("/api/chat", body.dump(), "application/json");
  }

  corral::testing::TempDir dir_;
  std::unique_ptr<RunningServer> running_;
};

TEST_F(ServerVision, HostileImagesGetA400SayingWhyAndTheServerGoesOn) {
  const std::string png = encode(40, 30, false);
  const std::string jpeg = encode(40, 30, true);
  struct Case {
    const char* what;
    std::string base64;
    const char* says;
  };
  const Case cases[] = {
      {"truncated PNG", store::base64_encode(png.substr(0, png.size() - 30)), "PNG"},
      {"truncated JPEG", store::base64_encode(jpeg.substr(0, jpeg.size() / 2)), "JPEG"},
      {"50000x50000 header", store::base64_encode(png_claiming(50000, 50000)), "50000x50000"},
      {"decompression bomb", store::base64_encode(png_claiming(20000, 20000)), "20000x20000"},
      {"not an image", store::base64_encode("just some text, not a picture"), "not an image"},
      {"invalid base64", "this is not base64!", "base64"},
      {"1x1", store::base64_encode(encode(1, 1, false)), "1x1"},
      {"1x4000", store::base64_encode(encode(1, 4000, false)), "1x4000"},
  };
  for (const Case& c : cases) {
    const auto r = chat("vl", c.base64);
    ASSERT_TRUE(r) << c.what << ": no answer";
    EXPECT_EQ(r->status, 400) << c.what << ": " << r->body;
    const std::string error = Json::parse(r->body).value("error", "");
    EXPECT_NE(error.find(c.says), std::string::npos) << c.what << ": " << error;
    // The next request is served.
    const auto ok = chat("vl", store::base64_encode(png));
    ASSERT_TRUE(ok) << "after " << c.what;
    EXPECT_EQ(ok->status, 200) << "after " << c.what << ": " << ok->body;
  }
  const auto r = chat("stories", store::base64_encode(png));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(r->body.find("does not support images"), std::string::npos) << r->body;
}

TEST_F(ServerVision, ShowSaysVisionAndPsCountsTheEncoderCache) {
  httplib::Client c("127.0.0.1", running_->port());
  auto show = c.Post("/api/show", R"({"model": "vl"})", "application/json");
  ASSERT_TRUE(show);
  const Json caps = Json::parse(show->body)["capabilities"];
  EXPECT_EQ(caps[0], "completion");
  EXPECT_NE(std::find(caps.begin(), caps.end(), "vision"), caps.end()) << caps.dump();
  show = c.Post("/api/show", R"({"model": "stories"})", "application/json");
  EXPECT_EQ(Json::parse(show->body)["capabilities"], Json({"completion"}));

  ASSERT_EQ(chat("vl", store::base64_encode(encode(40, 30, false)))->status, 200);
  const auto ps = c.Get("/api/ps");
  ASSERT_TRUE(ps);
  const Json models = Json::parse(ps->body)["models"];
  ASSERT_EQ(models.size(), 1u);
  // Weights (F32), KV cache and compute buffers, and the images the encoder cache may keep.
  EXPECT_GT(models[0]["size"].get<uint64_t>(), 365000u) << models.dump();
}

}  // namespace
}  // namespace corral::server
