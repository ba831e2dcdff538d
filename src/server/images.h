// Images in requests: base64 in Ollama's `images` fields, data: URIs (and, when allowed, http(s)
// URLs) in OpenAI's image_url parts; decoded and run through the model's image processor before
// anything is queued, so a bad image is a 400 that costs nothing else.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/vision.h"
#include "runner/multimodal.h"
#include "store/model.h"

namespace corral::server {

// Images one request may carry.
inline constexpr size_t kMaxImagesPerRequest = 32;

// Standard base64 (padding optional, no other characters); HttpError 400 naming `what`.
std::string decode_base64(std::string_view text, std::string_view what);

// The image of an OpenAI image_url: a data: URI ("data:image/png;base64,..."); an http(s) URL is
// fetched (at most 10 s and the body limit) only when `allow_urls` (CORRAL_ALLOW_IMAGE_URLS=1),
// else a 400 that says how to send the image instead.
std::string image_from_url(const std::string& url, bool allow_urls);

// Whether a model reads images: a vision model's tensors in its file, or a projector layer.
bool has_vision(const store::ModelInfo& info);

// The request's images through the model's image processor, with their digests. HttpError 400
// "image N: ..." for one that is not an image, too large, or one the processor refuses.
struct RequestImages {
  std::vector<std::shared_ptr<const model::ImageInput>> inputs;
  std::vector<std::string> digests;
};
RequestImages prepare_images(const model::Vision& vision, const std::vector<std::string>& images);

}  // namespace corral::server
