#include "server/images.h"

#include <httplib.h>

#include <array>
#include <chrono>

#include "image/image.h"
#include "ml/gguf/reader.h"
#include "server/server.h"
#include "store/digest.h"

namespace corral::server {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Images fetched from URLs are held to the same size as images sent inline.
constexpr size_t kMaxFetchedBytes = size_t{32} << 20;
constexpr auto kFetchTimeout = std::chrono::seconds(10);

}  // namespace

std::string decode_base64(std::string_view text, std::string_view what) {
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> v{};
    v.fill(-1);
    for (int i = 0; i < 64; ++i) v[static_cast<uint8_t>(kAlphabet[i])] = static_cast<int8_t>(i);
    return v;
  }();
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) {
    throw HttpError(400, std::string(what) + " is not valid base64 (its length is impossible)");
  }
  std::string out;
  out.reserve(text.size() / 4 * 3 + 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int8_t v = kValue[static_cast<uint8_t>(text[i])];
    if (v < 0) {
      throw HttpError(400, std::string(what) + " is not valid base64 (unexpected character at " +
                               std::to_string(i) + ")");
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string encode_base64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) |
                       (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string image_from_url(const std::string& url, bool allow_urls) {
  if (url.starts_with("data:")) {
    const size_t comma = url.find(',');
    if (comma == std::string::npos) throw HttpError(400, "image_url: a data: URI without data");
    const std::string_view header(url.data() + 5, comma - 5);
    if (!header.ends_with(";base64")) {
      throw HttpError(400, "image_url: only base64 data: URIs are supported");
    }
    return decode_base64(std::string_view(url).substr(comma + 1), "image_url data");
  }
  const bool http = url.starts_with("http://") || url.starts_with("https://");
  if (!http) throw HttpError(400, "image_url: expected a data: URI or an http(s) URL");
  if (!allow_urls) {
    throw HttpError(400,
                    "image_url: image URLs are not fetched by this server; send the image as a "
                    "data: URI (data:image/png;base64,...), or start the server with "
                    "CORRAL_ALLOW_IMAGE_URLS=1");
  }
  const size_t scheme_end = url.find("://") + 3;
  const size_t path_at = url.find('/', scheme_end);
  const std::string origin = url.substr(0, path_at);
  const std::string path = path_at == std::string::npos ? "/" : url.substr(path_at);
  httplib::Client client(origin);
  client.set_connection_timeout(kFetchTimeout);
  client.set_read_timeout(kFetchTimeout);
  client.set_follow_location(true);
  std::string body;
  bool too_large = false;
  const auto deadline = std::chrono::steady_clock::now() + kFetchTimeout;
  bool late = false;
  auto res = client.Get(path, [&](const char* data, size_t n) {
    if (std::chrono::steady_clock::now() > deadline) {
      late = true;
      return false;
    }
    if (body.size() + n > kMaxFetchedBytes) {
      too_large = true;
      return false;
    }
    body.append(data, n);
    return true;
  });
  if (too_large) throw HttpError(400, "image_url: the image is larger than 32 MiB");
  if (late) throw HttpError(400, "image_url: fetching the image took longer than 10 s");
  if (!res) {
    throw HttpError(
        400, "image_url: fetching " + origin + " failed: " + httplib::to_string(res.error()));
  }
  if (res->status != 200) {
    throw HttpError(
        400, "image_url: " + url.substr(0, 200) + " answered " + std::to_string(res->status));
  }
  return body;
}

bool has_vision(const store::ModelInfo& info) {
  if (!info.projector.empty()) return true;
  try {
    const ml::gguf::File f = ml::gguf::File::open(info.gguf.string());
    for (const auto& t : f.tensors()) {
      if (t.name.starts_with("v.")) return true;
    }
  } catch (const std::exception&) {
  }
  return false;
}

RequestImages prepare_images(const model::Vision& vision, const std::vector<std::string>& images) {
  RequestImages out;
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string& bytes = images[i];
    try {
      const image::Image rgb =
          image::decode(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
      out.inputs.push_back(std::make_shared<const model::ImageInput>(vision.preprocess(rgb)));
    } catch (const image::Error& e) {
      throw HttpError(400, "image " + std::to_string(i) + ": " + e.what());
    } catch (const std::invalid_argument& e) {
      throw HttpError(400, "image " + std::to_string(i) + ": " + e.what());
    }
    out.digests.push_back(store::sha256_digest(bytes));
  }
  return out;
}

}  // namespace corral::server
