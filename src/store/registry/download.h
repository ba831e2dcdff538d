// One blob of a pull, downloaded in ranged parts in parallel into a partial file beside a
// progress file (JSON: the digest, size, part size and each part's completed bytes), so that a
// later pull continues each part where it stopped. A dropped connection, a stall, a 5xx or a 429
// is retried with exponential backoff (the count restarts whenever a try made progress).
//
// Parts: at most 16, of at least 4 MiB. Sixteen parallel ranges fill a fast link even when each
// connection is slow (a CDN's per-connection limits), as Ollama's 16 parts do; 4 MiB keeps the
// per-request cost (a round trip, a redirect, TLS) small beside the part's transfer time, and a
// small blob (a config, a template) takes one request. A resumed part asks only for its missing
// bytes, so a drop costs what was in flight, not the part.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

#include "store/registry/client.h"

namespace corral::store::registry {

struct PartOptions {
  uint64_t min_part_size = 4 << 20;
  int max_parts = 16;
  std::function<bool()> cancelled;  // polled while bytes arrive
};

// Bytes of the blob on disk (resumed ones included) out of its size; called from one thread at a
// time, at most every 100 ms and at the end. May throw to stop the download.
using BlobProgress = std::function<void(uint64_t completed, uint64_t total)>;

// Leaves `partial` holding the blob's `size` bytes (not yet verified) and removes the progress
// file. Throws the last error (naming the URL and the digest) when a part runs out of tries.
void download_blob(Client& client, const std::string& digest, uint64_t size,
                   const std::filesystem::path& partial, const PartOptions& options,
                   const BlobProgress& progress);

// The progress file of a partial file.
std::filesystem::path progress_file(const std::filesystem::path& partial);

}  // namespace corral::store::registry
