// `corral debug preprocess MODEL IMAGE`: what the model's image processor makes of an image —
// transformers' pixel_values (shape and values) and its companions (aspect_ratio_ids and
// aspect_ratio_mask for mllama, image_grid_thw for qwen2vl) — for checking a vision model's
// preprocessing against its reference. Text: shape, statistics and the first values; --json:
// every value.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/debug_images.h"
#include "image/image.h"
#include "runner/engine.h"
#include "store/digest.h"
#include "store/model.h"

namespace corral::cli {

runner::PromptImage read_prompt_image(const model::Model& model, const std::string& path) {
  const model::Vision* vision = model.vision();
  if (vision == nullptr) {
    throw std::runtime_error("this model (" + model.config().architecture +
                             ") does not support images (it has no vision encoder)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot be opened");
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  runner::PromptImage out;
  try {
    const image::Image rgb =
        image::decode(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
    out.input = std::make_shared<const model::ImageInput>(vision->preprocess(rgb));
  } catch (const image::Error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  out.digest = store::sha256_digest(bytes);
  return out;
}

namespace {

using Json = nlohmann::ordered_json;

struct PreprocessArgs {
  std::string model;
  std::string image;
  bool json = false;
};

void run_preprocess(const PreprocessArgs& a) {
  const store::ModelInfo info = store::resolve(store::Store(store::Store::default_root()), a.model);
  runner::Engine engine(info.gguf.string(), {.n_threads = 1, .projector = info.projector.string()});
  const runner::PromptImage image = read_prompt_image(engine.model(), a.image);
  const model::ImageInput& in = *image.input;
  const std::string arch = engine.model().config().architecture;
  if (a.json) {
    Json doc{{"model", a.model},
             {"image", a.image},
             {"pixel_values_shape", in.shape},
             {"pixel_values", in.pixel_values}};
    if (!in.aspect_ratio_mask.empty()) {
      doc["aspect_ratio_ids"] = Json::array({Json::array({in.aspect_ratio_id})});
      doc["aspect_ratio_mask"] = Json::array({Json::array({in.aspect_ratio_mask})});
    }
    if (in.grid_thw[0] > 0) doc["image_grid_thw"] = Json::array({in.grid_thw});
    std::cout << doc.dump() << "\n";
    return;
  }
  std::string shape;
  for (int64_t d : in.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
  std::printf("%s: %s image processor, %s\n", a.image.c_str(), arch.c_str(), image.digest.c_str());
  std::printf("pixel_values: [%s]\n", shape.c_str());
  double sum = 0, min = INFINITY, max = -INFINITY;
  for (float v : in.pixel_values) {
    sum += v;
    min = std::min<double>(min, v);
    max = std::max<double>(max, v);
  }
  const size_t n = in.pixel_values.size();
  std::printf("  min %.6f  max %.6f  mean %.6f  sum %.6f over %zu values\n", min, max,
              n ? sum / static_cast<double>(n) : 0.0, sum, n);
  std::printf("  first:");
  for (size_t i = 0; i < std::min<size_t>(8, n); ++i) std::printf(" %.6f", in.pixel_values[i]);
  std::printf("\n");
  if (!in.aspect_ratio_mask.empty()) {
    std::printf("aspect_ratio_ids: [[%d]]\naspect_ratio_mask: [[[", in.aspect_ratio_id);
    for (size_t i = 0; i < in.aspect_ratio_mask.size(); ++i) {
      std::printf("%s%d", i ? ", " : "", in.aspect_ratio_mask[i]);
    }
    std::printf("]]]\n");
  }
  if (in.grid_thw[0] > 0) {
    std::printf("image_grid_thw: [[%lld, %lld, %lld]]\n", static_cast<long long>(in.grid_thw[0]),
                static_cast<long long>(in.grid_thw[1]), static_cast<long long>(in.grid_thw[2]));
  }
}

}  // namespace

void add_debug_preprocess_command(CLI::App& debug) {
  auto* cmd = debug.add_subcommand(
      "preprocess",
      "Print what a vision model's image processor makes of an image: pixel_values (shape, "
      "statistics, first values) and aspect ratio ids/mask or image_grid_thw; --json: all");
  auto a = std::make_shared<PreprocessArgs>();
  cmd->add_option("model", a->model, "GGUF model file, or a model in the store")->required();
  cmd->add_option("image", a->image, "PNG, JPEG or WebP file")->required();
  cmd->add_flag("--json", a->json,
                "Print {\"pixel_values_shape\", \"pixel_values\", ...} as transformers names them");
  cmd->callback([a] { run_preprocess(*a); });
}

}  // namespace corral::cli
