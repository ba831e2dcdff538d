// Model names with Ollama's grammar: [host/][namespace/]model[:tag], defaults registry.ollama.ai,
// library and latest. Every part is validated so that no name can reach outside the store.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace corral::store {

class NameError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct ModelName {
  std::string host = "registry.ollama.ai";
  std::string ns = "library";
  std::string model;
  std::string tag = "latest";

  // Throws NameError saying what is wrong ("model name ../x: ..."). Host may carry a port.
  static ModelName parse(std::string_view text);
  // Whether `text` looks like a model name at all (used to tell names from file paths).
  static bool valid(std::string_view text);

  // As Ollama prints it: defaults dropped ("llama3.2:latest", "me/model:q4", "host:5000/a/b:c").
  std::string display() const;
  // host/ns/model/tag, the manifest path under manifests/.
  std::string manifest_path() const;
  // Names compare case-insensitively, as in Ollama.
  bool operator==(const ModelName& other) const;
};

}  // namespace corral::store
