#include "server/images.h"

#include "store/base64.h"

#include <httplib.h>

#include <array>
#include <chrono>

#include "image/image.h"
#include "ml/gguf/reader.h"
#include "server/server.h"
#include "store/digest.h"

namespace corral::server {
namespace {

// Images fetched from URLs are held to the same size as images sent inline.
constexpr size_t kMaxFetchedBytes = size_t{32} << 20;
constexpr auto kFetchTimeout = std::chrono::seconds(10);

}  // namespace

std::string decode_base64(std::string_view text, std::string_view what) {
  try {
    return store::base64_decode(text);
  } catch (const std::invalid_argument& e) {
    throw HttpError(400, std::string(what) + " is " + e.what());
  }
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
