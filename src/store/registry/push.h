// `corral push`: a model of the store to an OCI registry. Each layer blob and the config blob is
// made present in the model's repository (upload.h: HEAD to skip, cross-repository mount, chunked
// resumable upload), then the manifest is PUT with the stored bytes, so the registry's digest of
// it is the one `corral list` shows.
//
// Mounts: a blob that another local model of the same registry host references (a model pulled
// from there or pushed there, or a layer whose Ollama "from" names a model there) is mounted from
// that model's repository instead of uploaded. A registry that cannot mount it (the blob is not
// there after all, or mounts are off) opens an ordinary upload session instead, which is used.
#pragma once

#include <functional>

#include "store/names.h"
#include "store/registry/client.h"
#include "store/registry/pull.h"
#include "store/registry/upload.h"
#include "store/store.h"

namespace corral::store::registry {

// Ollama's push statuses: "retrieving manifest", "pushing <12 hex>" (with digest, total and
// completed; a blob the registry has, or mounts, is shown complete at once), "pushing manifest",
// "success". The same shape as a pull's.
using PushProgress = PullProgress;

struct PushOptions {
  ClientOptions client;
  UploadOptions upload;
  std::function<void(const PushProgress&)> progress;  // may throw to stop the push
};

// Options for a push as the CLI and server make it: the signing key and credentials files of a
// pull (pull_options_from_env). The mirror setting is not used: it redirects reads of the default
// registry, and a push goes where the name says.
PushOptions push_options(bool insecure);

// What a push did with each blob, for callers that report it (and tests).
struct PushResult {
  int existed = 0, mounted = 0, uploaded = 0;
  uint64_t uploaded_bytes = 0;
};

// Throws "model 'x' not found" when the store has no such model, and an error naming the blob
// when one of its blobs is missing from the store.
PushResult push(const Store& store, const ModelName& name, const PushOptions& options);

}  // namespace corral::store::registry
