// The model store in Ollama's on-disk layout under $CORRAL_MODELS (default ~/.corral/models):
// manifests/<host>/<namespace>/<model>/<tag> (Docker v2 manifests) and blobs/sha256-<hex>.
// Writes are atomic (temp file + rename), blob digests are verified, and a blob is deleted only
// when no manifest references it. An existing Ollama store can be used as it is.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <utility>
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
  std::string from;  // Ollama's optional "from" (the source a layer was taken from)
};

struct Manifest {
  int schema_version = 2;
  std::string media_type = kMediaManifest;
  Layer config;
  std::vector<Layer> layers;

  // Compact JSON as Ollama writes it (Go's encoding/json, with its trailing newline).
  std::string to_json() const;
  // Throws std::runtime_error naming `source` on bad JSON, a missing field, a digest that is not
  // sha256:<64 hex> (digests name files, so nothing else is let through) or a manifest list.
  static Manifest parse(const std::string& json, const std::string& source);
  // The first layer of this media type, or nullptr.
  const Layer* find_layer(const std::string& media_type) const;
};

struct ModelEntry {
  ModelName name;
  Manifest manifest;
  uint64_t size = 0;  // sum of the config's and the layers' sizes, as Ollama's list shows
  std::filesystem::file_time_type modified;
  std::string digest;  // sha256 of the manifest file, hex
};

// A private scratch folder under <store>/tmp for work files that become blobs (same filesystem,
// so a finished file is renamed into blobs/, never copied). It is locked (flock) while this object
// lives and removed with it; folders left by a killed process are unlocked and are swept by the
// next ScratchDir. Nothing in tmp/ is ever seen by list or run.
class ScratchDir {
 public:
  explicit ScratchDir(const std::filesystem::path& store_root);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path file(const std::string& name) const { return path_ / name; }
  // Removes the folders of processes that are gone (a killed create or upload), as a new
  // ScratchDir does; `corral serve` calls it when it starts.
  static void sweep(const std::filesystem::path& store_root);

 private:
  std::filesystem::path path_;
  int lock_fd_ = -1;
};

// Bytes done out of a total, for copies and hashes of large files.
using ByteProgress = std::function<void(uint64_t done, uint64_t total)>;

class Store {
 public:
  explicit Store(std::filesystem::path root);
  // $CORRAL_MODELS, else ~/.corral/models.
  static std::filesystem::path default_root();

  const std::filesystem::path& root() const { return root_; }

  // Copies a file into blobs/ (hashing as it copies; temp file + fsync + rename). `created` is set
  // to whether the blob was new (false: an identical blob was already there).
  Layer add_blob_file(const std::filesystem::path& file, const std::string& media_type,
                      const ByteProgress& progress = {}, bool* created = nullptr);
  Layer add_blob_bytes(const std::string& bytes, const std::string& media_type,
                       bool* created = nullptr);
  // Moves a finished file on the store's filesystem (a ScratchDir file) into blobs/ under its
  // digest.
  Layer adopt_blob_file(const std::filesystem::path& file, const std::string& media_type,
                        bool* created = nullptr);

  // adopt_blob_file for a file whose digest the caller computed while writing it (an upload).
  Layer adopt_hashed(const std::filesystem::path& file, const std::string& digest,
                     const std::string& media_type, bool* created = nullptr);

  std::filesystem::path blob_path(const std::string& digest) const;  // validates the digest
  bool has_blob(const std::string& digest) const;
  // Small blobs (text layers, config), checked against their digest.
  std::string read_blob(const std::string& digest) const;
  // Checks that a blob's content hashes to its name (throws saying it is corrupt). A blob that
  // passed is marked (extended attribute holding its size and mtime) so that large model blobs
  // are hashed once, not on every run; a changed file loses the mark.
  void verify_blob(const std::string& digest, const ByteProgress& progress = {}) const;

  std::optional<Manifest> find_manifest(const ModelName& name) const;
  Manifest manifest(const ModelName& name) const;  // throws "model 'x' not found"
  void write_manifest(const ModelName& name, const Manifest& manifest);  // atomic
  // Writes a manifest's JSON text as it is (a registry's bytes, so its digest is kept), after
  // checking that it parses.
  void write_manifest_json(const ModelName& name, const std::string& json);
  std::vector<ModelEntry> list() const;
  void copy(const ModelName& from, const ModelName& to);
  // Removes the manifest and every blob no other manifest references. Throws "model 'x' not
  // found" when there is no such model.
  void remove(const ModelName& name);
  // Deletes those of `digests` that no manifest references (after a manifest was replaced).
  void remove_unreferenced(const std::vector<std::string>& digests);
  // Deletes every blob no manifest references and that is older than `min_age` (younger ones may
  // belong to a create or pull that has not written its manifest yet); a pull's partial files
  // stay, for resuming. Returns the number of blobs and bytes removed. `corral serve` prunes
  // when it starts, unless CORRAL_NOPRUNE is set (Ollama's OLLAMA_NOPRUNE).
  std::pair<size_t, uint64_t> prune(std::chrono::seconds min_age);

 private:
  std::filesystem::path manifest_file(const ModelName& name) const;
  // The name's manifest file, matching names case-insensitively as Ollama does; empty if none.
  std::filesystem::path find_manifest_file(const ModelName& name) const;

  std::filesystem::path root_;
};

}  // namespace corral::store
