// One blob of a push: HEAD to skip a blob the repository has, a cross-repository mount when the
// blob is known to be in another repository of the same registry, else a chunked upload (POST to
// open an upload session, PATCH each chunk with its Content-Range, PUT ?digest= to commit it).
//
// Resumable: after a dropped connection, a stall, a 5xx or a 429, the upload URL is asked (GET)
// for the registry's offset (its Range header) and the upload goes on from there, with the
// client's exponential backoff (the count restarts whenever a chunk was accepted). A registry that
// no longer knows the session (the CNCF distribution server forgets a session whose last chunk it
// half received) gets a new session, from the blob's first byte.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "store/registry/client.h"
#include "store/registry/download.h"
#include "store/store.h"

namespace corral::store::registry {

struct UploadOptions {
  // One PATCH each. A registry without redirect uploads takes one session's chunks in order, so
  // chunks are sent one after another; 64 MiB keeps the per-request cost small and bounds what a
  // dropped connection costs.
  uint64_t chunk_size = 64 << 20;
};

enum class BlobPushed { kExisted, kMounted, kUploaded };

// Makes `layer`'s blob (read from `file`) present in the client's repository. `mount_from`
// ("namespace/model", may be empty) is a repository of the same registry likely to hold it.
// Throws the last error (naming the URL and the digest) when a request runs out of tries.
BlobPushed push_blob(Client& client, const Layer& layer, const std::filesystem::path& file,
                     const std::string& mount_from, const UploadOptions& options,
                     const BlobProgress& progress);

}  // namespace corral::store::registry
