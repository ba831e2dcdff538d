// `corral pull`: a model from an OCI registry into the store. The manifest is fetched first, then
// every layer blob and the config blob that the store lacks (download.h: parts, resume, retries),
// each verified against its sha256 digest before it is moved into blobs/ (a mismatch: the blob is
// fetched once more, then the pull fails); the manifest is written last, atomically, so list and
// run never see a model whose blobs are not all there.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "store/names.h"
#include "store/registry/client.h"
#include "store/registry/download.h"
#include "store/store.h"

namespace corral::store::registry {

// Ollama's pull statuses: "pulling manifest", "pulling <12 hex>" (with digest, total and
// completed), "verifying sha256 digest", "writing manifest", "success".
struct PullProgress {
  std::string status;
  std::string digest;
  uint64_t total = 0, completed = 0;
};

struct PullOptions {
  ClientOptions client;
  PartOptions parts;
  std::function<void(const PullProgress&)> progress;  // may throw to stop the pull
};

// Options for a pull as the CLI and server make it: from the environment CORRAL_REGISTRY_MIRROR
// and CORRAL_PULL_PARTS (the most parts a blob is fetched in at once, 1..kMaxParts; default 16);
// the signing key ~/.corral/id_ed25519 and the default credentials files.
PullOptions pull_options_from_env(bool insecure);

inline constexpr int kMaxParts = 64;

// The most layers a manifest may list.
inline constexpr size_t kMaxLayers = 256;

void pull(Store& store, const ModelName& name, const PullOptions& options);

}  // namespace corral::store::registry
