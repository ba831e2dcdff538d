// What running a model needs, gathered from the store (its manifest's layers) or from a plain
// GGUF file path.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "store/store.h"

namespace corral::store {

struct ModelInfo {
  std::string name;                 // as the user should see it ("my-model:latest", or the path)
  std::filesystem::path gguf;       // the model layer's blob, or the file given
  std::filesystem::path projector;  // a vision model's projector layer (mmproj), when separate
  std::optional<ModelName> ref;     // set when it came from the store
  std::optional<Manifest> manifest;
  std::optional<std::string> template_text;  // TEMPLATE layer (Go text/template)
  std::optional<std::string> system;         // SYSTEM layer
  nlohmann::ordered_json parameters = nlohmann::ordered_json::object();  // params layer
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();     // messages layer
  std::vector<std::string> licenses;
  nlohmann::ordered_json config = nlohmann::ordered_json::object();  // the config blob
};

// An existing file path (or anything ending in .gguf) is used as it is; anything else is parsed
// as a model name and looked up in `store`. Throws with a clear message ("model 'x' not found",
// a bad name, a missing or corrupt blob). The model blob's digest is verified (see
// Store::verify_blob); the small layers are verified as they are read.
ModelInfo resolve(const Store& store, const std::string& name_or_path);

// The ModelInfo of a store model whose manifest was already read (resolve's second half; the
// server uses it so that a request's name is never taken for a file path).
ModelInfo resolve_manifest(const Store& store, const ModelName& name, Manifest manifest);

// Whether `text` names an existing file or ends in .gguf (then it is used as a path).
bool is_model_path(const std::string& text);

// Whether a FROM value or `run` argument is written as a path (./x, /x, ~/x, x.gguf) rather than
// a model name; such a value that names no file is an error, never a name to pull.
bool looks_like_path(const std::string& text);

// The error for a path that names nothing: "FROM ./x: no such file or folder (/abs/x)", with a
// hint when the value holds an inline " #" (a Modelfile comment must start its own line).
std::string missing_path_error(const std::string& what, const std::filesystem::path& resolved);

}  // namespace corral::store
