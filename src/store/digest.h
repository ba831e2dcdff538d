// SHA-256 digests as the store names blobs: "sha256:<64 lowercase hex>" in manifests, files
// blobs/sha256-<hex>.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace corral::store {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  // "sha256:<hex>"; the hasher cannot be updated afterwards.
  std::string digest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string sha256_digest(std::string_view bytes);
// Hashes a file, reporting bytes done to `progress` (may be empty) as it reads.
std::string sha256_file(const std::filesystem::path& file,
                        const std::function<void(uint64_t done, uint64_t total)>& progress = {});

// "sha256:<hex>" from "sha256:<hex>" or "sha256-<hex>" (either case); throws
// std::invalid_argument naming the text when it is anything else.
std::string canonical_digest(std::string_view digest);

}  // namespace corral::store
