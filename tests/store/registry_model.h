// The stories260K model as a registry holds it after `ollama push`: the GGUF as the model layer, a
// params layer and a config blob, under one repository and tag of a LocalRegistry.
#pragma once

#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

#include "store/local_registry.h"
#include "store/store.h"
#include "testdata.h"

namespace corral::testing {

// Pushes the model to `repo:tag` and returns the manifest's JSON text.
inline std::string push_stories_model(LocalRegistry& registry, const std::string& repo,
                                      const std::string& tag) {
  std::ifstream in(testdata_path("tinystories260k/stories260K-f32.gguf"), std::ios::binary);
  const std::string gguf{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  const std::string params = R"({"temperature":0,"num_thread":1})";
  const std::string config = R"({"model_format":"gguf","model_family":"llama","file_type":"F32"})";
  const auto layer = [&](const char* media_type, const std::string& bytes) {
    return nlohmann::json{{"mediaType", media_type},
                          {"digest", registry.push_blob(repo, bytes)},
                          {"size", bytes.size()}};
  };
  const std::string manifest =
      nlohmann::json{
          {"schemaVersion", 2},
          {"mediaType", store::kMediaManifest},
          {"config", layer(store::kMediaConfig, config)},
          {"layers", {layer(store::kMediaModel, gguf), layer(store::kMediaParams, params)}}}
          .dump();
  registry.push_manifest(repo, tag, manifest);
  return manifest;
}

}  // namespace corral::testing
