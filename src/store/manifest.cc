// Docker v2 manifests as Ollama writes them (server/images.go, manifest/manifest.go).
#include <nlohmann/json.hpp>

#include <stdexcept>

#include "store/digest.h"
#include "store/store.h"

namespace corral::store {
namespace {

using Json = nlohmann::ordered_json;

Json layer_json(const Layer& l) {
  Json j = {{"mediaType", l.media_type}, {"digest", l.digest}, {"size", l.size}};
  if (!l.from.empty()) j["from"] = l.from;
  return j;
}

Layer parse_layer(const Json& j, const std::string& where) {
  if (!j.is_object()) throw std::runtime_error(where + " is not an object");
  Layer l;
  if (!j.contains("mediaType") || !j["mediaType"].is_string()) {
    throw std::runtime_error(where + " has no mediaType");
  }
  l.media_type = j["mediaType"].get<std::string>();
  if (!j.contains("digest") || !j["digest"].is_string()) {
    throw std::runtime_error(where + " has no digest");
  }
  try {
    l.digest = canonical_digest(j["digest"].get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(where + ": " + e.what());
  }
  if (j.contains("size")) {
    if (!j["size"].is_number_unsigned() && !j["size"].is_number_integer()) {
      throw std::runtime_error(where + ": size is not a number");
    }
    const int64_t size = j["size"].get<int64_t>();
    if (size < 0) throw std::runtime_error(where + ": negative size");
    l.size = static_cast<uint64_t>(size);
  }
  if (j.contains("from") && j["from"].is_string()) l.from = j["from"].get<std::string>();
  return l;
}

}  // namespace

std::string Manifest::to_json() const {
  Json layers_json = Json::array();
  for (const Layer& l : layers) layers_json.push_back(layer_json(l));
  Json j = {{"schemaVersion", schema_version},
            {"mediaType", media_type},
            {"config", layer_json(config)},
            {"layers", std::move(layers_json)}};
  return j.dump() + "\n";
}

Manifest Manifest::parse(const std::string& json, const std::string& source) {
  Json j;
  try {
    j = Json::parse(json);
  } catch (const std::exception& e) {
    throw std::runtime_error(source + ": not a valid manifest (bad JSON: " + e.what() + ")");
  }
  try {
    if (!j.is_object()) throw std::runtime_error("not a JSON object");
    Manifest m;
    if (j.contains("mediaType") && j["mediaType"].is_string()) {
      m.media_type = j["mediaType"].get<std::string>();
    }
    if (m.media_type == "application/vnd.ollama.manifest.list.v2+json") {
      throw std::runtime_error("manifest lists are not supported yet");
    }
    if (j.contains("schemaVersion") && j["schemaVersion"].is_number_integer()) {
      m.schema_version = j["schemaVersion"].get<int>();
    }
    if (!j.contains("config")) throw std::runtime_error("no config");
    m.config = parse_layer(j["config"], "config");
    if (!j.contains("layers") || !j["layers"].is_array()) throw std::runtime_error("no layers");
    for (size_t i = 0; i < j["layers"].size(); ++i) {
      m.layers.push_back(parse_layer(j["layers"][i], "layer " + std::to_string(i)));
    }
    return m;
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(source + ": not a valid manifest: " + e.what());
  }
}

const Layer* Manifest::find_layer(const std::string& media_type) const {
  for (const Layer& l : layers) {
    if (l.media_type == media_type) return &l;
  }
  return nullptr;
}

}  // namespace corral::store
