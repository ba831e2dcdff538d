// The model store in Ollama's on-disk layout under $CORRAL_MODELS (default ~/.corral/models):
// manifests/<host>/<namespace>/<model>/<tag> (Docker v2 manifests) and blobs/sha256-<hex>.
// Writes are atomic (temp file + rename), blob digests are verified, and a blob is deleted only
// when no manifest references it. An existing Ollama store can be used as it is.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "store/names.h"

namespace corral::store {

// Ollama's layer media types.
inline constexpr const char* kMediaModel = "application/vnd.ollama.image.model";
inline constexpr const char* kMediaAdapter = "application/vnd.ollama.image.adapter";
inline constexpr const char* kMediaProjector = "application/vnd.ollama.image.projector";
inline constexpr const char* kMediaTemplate = "application/vnd.ollama.image.template";
inline constexpr const char* kMediaSystem = "application/vnd.ollama.image.system";
inline constexpr const char* kMediaParams = "application/vnd.ollama.image.params";
inline constexpr const char* kMediaMessages = "application/vnd.ollama.image.messages";
inline constexpr const char* kMediaLicense = "application/vnd.ollama.image.license";
inline constexpr const char* kMediaConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kMediaManifest =
    "application/vnd.docker.distribution.manifest.v2+json";

struct Layer {
  std::string media_type;
  std::string digest;  // "sha256:<64 hex>"
  uint64_t size = 0;
};

struct Manifest {
  int schema_version = 2;
  std::string media_type = kMediaManifest;
  Layer config;
  std::vector<Layer> layers;

  std::string to_json() const;
  static Manifest parse(const std::string& json, const std::string& source);  // throws naming it
};

struct ModelEntry {
  ModelName name;
  Manifest manifest;
  uint64_t size = 0;  // sum of layer sizes
  std::filesystem::file_time_type modified;
  std::string digest;  // sha256 of the manifest file, hex
};

class Store {
 public:
  explicit Store(std::filesystem::path root);
  // $CORRAL_MODELS, else ~/.corral/models.
  static std::filesystem::path default_root();

  const std::filesystem::path& root() const { return root_; }

  // Copies a file into blobs/ (hashing as it copies; atomic). Returns the layer.
  Layer add_blob_file(const std::filesystem::path& file, const std::string& media_type);
  Layer add_blob_bytes(const std::string& bytes, const std::string& media_type);
  // Moves a finished file (in the same filesystem, e.g. a temp file under root()/tmp) into
  // blobs/ under its digest.
  Layer adopt_blob_file(const std::filesystem::path& file, const std::string& media_type);
  // A scratch path under the store for work files (removed by the caller; stale ones are swept).
  std::filesystem::path temp_path(const std::string& hint);

  std::filesystem::path blob_path(const std::string& digest) const;  // validates the digest
  bool has_blob(const std::string& digest) const;
  std::string read_blob(const std::string& digest) const;  // small blobs (text layers, config)

  std::optional<Manifest> find_manifest(const ModelName& name) const;
  Manifest manifest(const ModelName& name) const;  // throws "model 'x' not found"
  void write_manifest(const ModelName& name, const Manifest& manifest);  // atomic
  std::vector<ModelEntry> list() const;
  void copy(const ModelName& from, const ModelName& to);
  // Removes the manifest and every blob no other manifest references.
  void remove(const ModelName& name);

 private:
  std::filesystem::path root_;
};

}  // namespace corral::store
