#include "store/registry/pull.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/digest.h"
#include "store/registry/credentials.h"

namespace corral::store::registry {
namespace {

namespace fs = std::filesystem;

// Held while a blob is downloaded, so two pulls of one blob (in this process or another) never
// write one partial file: the second one waits, showing the first one's progress, then finds the
// blob in the store; if the first one stopped before the end, the second one takes over where its
// progress file says it stopped.
class BlobLock {
 public:
  explicit BlobLock(const fs::path& file) : file_(file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot lock " + file.string());
  }
  ~BlobLock() { ::close(fd_); }
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

  // Takes the lock; while another holder has it, calls `waiting` every 100 ms (which may throw).
  void lock(const std::function<void()>& waiting) {
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK && errno != EINTR) {
        throw std::runtime_error("cannot lock " + file_.string() + ": " + std::strerror(errno));
      }
      waiting();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

 private:
  fs::path file_;
  int fd_ = -1;
};

// The bytes another pull has of a blob, from its progress file (0 when unreadable).
uint64_t bytes_in_progress(const fs::path& partial) {
  try {
    std::ifstream in(progress_file(partial), std::ios::binary);
    uint64_t n = 0;
    const auto state = nlohmann::json::parse(in);
    for (const auto& done : state.at("completed")) n += done.get<uint64_t>();
    return n;
  } catch (const std::exception&) {
    return 0;
  }
}

fs::path lock_file(const fs::path& partial) { return partial.string() + ".lock"; }

void report(const PullOptions& o, PullProgress p) {
  if (o.progress) o.progress(p);
}

void fetch(Client& client, const Layer& layer, const fs::path& partial, const PullOptions& o) {
  const std::string status = "pulling " + layer.digest.substr(7, 12);
  download_blob(client, layer.digest, layer.size, partial, o.parts,
                [&](uint64_t done, uint64_t total) {
                  report(o, {status, layer.digest, total, done});
                });
}

// Moves a downloaded blob into blobs/ if it hashes to its digest; else fetches it once more.
void verify_blob(Store& st, Client& client, const Layer& layer, const fs::path& partial,
                 const PullOptions& o) {
  for (int round = 0;; ++round) {
    const std::string got = sha256_file(partial);
    if (got == layer.digest) break;
    std::error_code ec;
    fs::remove(partial, ec);
    if (round > 0) {
      throw std::runtime_error(client.repository_url() + "/blobs/" + layer.digest +
                               ": the downloaded blob hashes to " + got + " twice (expected " +
                               layer.digest + ")");
    }
    fetch(client, layer, partial, o);
  }
  st.adopt_hashed(partial, layer.digest, layer.media_type);
}

}  // namespace

PullOptions pull_options_from_env(bool insecure) {
  PullOptions o;
  o.client.insecure = insecure;
  if (const char* mirror = std::getenv("CORRAL_REGISTRY_MIRROR")) o.client.mirror = mirror;
  if (const char* parts = std::getenv("CORRAL_PULL_PARTS")) {
    char* end = nullptr;
    const long n = std::strtol(parts, &end, 10);
    if (end == parts || *end != '\0' || n < 1 || n > kMaxParts) {
      throw std::runtime_error("CORRAL_PULL_PARTS must be a number from 1 to " +
                               std::to_string(kMaxParts) + ", not '" + parts + "'");
    }
    o.parts.max_parts = static_cast<int>(n);
  }
  o.client.key_file = default_key_path();
  o.client.credential_files = default_credential_files();
  return o;
}

void pull(Store& st, const ModelName& name, const PullOptions& o) {
  Client client(name, o.client);
  report(o, {"pulling manifest", "", 0, 0});
  const std::string text = client.manifest();
  const std::string source = client.repository_url() + "/manifests/" + name.tag;
  const Manifest manifest = Manifest::parse(text, source);
  if (manifest.layers.size() > kMaxLayers) {
    throw std::runtime_error(source + ": " + std::to_string(manifest.layers.size()) +
                             " layers (at most " + std::to_string(kMaxLayers) + " expected)");
  }
  std::vector<Layer> blobs = manifest.layers;
  blobs.push_back(manifest.config);
  uint64_t missing = 0;
  for (const Layer& layer : blobs) {
    if (st.has_blob(layer.digest)) continue;
    const fs::path partial = st.blob_path(layer.digest).string() + "-partial";
    // What the partial file already holds on disk needs no more room: its allocated blocks (a
    // pull stopped by a full disk may not have saved its progress), or the saved progress.
    uint64_t held = bytes_in_progress(partial);
    struct stat sb;
    if (::stat(partial.c_str(), &sb) == 0) {
      held = std::max(held, static_cast<uint64_t>(sb.st_blocks) * 512);
    }
    missing += layer.size - std::min(held, layer.size);
  }
  fs::create_directories(st.root() / "blobs");
  const uint64_t available = fs::space(st.root() / "blobs").available;
  if (missing > available) {
    throw std::runtime_error(source + ": the model needs " + std::to_string(missing) +
                             " bytes of blobs, and " + st.root().string() + " has " +
                             std::to_string(available) + " free");
  }
  // One blob at a time under its lock (never two locks held: two pulls cannot deadlock), each
  // verified as soon as it is complete; the status follows Ollama's order of statuses.
  for (const Layer& layer : blobs) {
    const fs::path partial = st.blob_path(layer.digest).string() + "-partial";
    fs::create_directories(partial.parent_path());
    if (!st.has_blob(layer.digest)) {
      const std::string status = "pulling " + layer.digest.substr(7, 12);
      BlobLock lock(lock_file(partial));
      lock.lock([&] {
        if (o.parts.cancelled && o.parts.cancelled()) throw std::runtime_error("pull cancelled");
        report(o, {status, layer.digest, layer.size,
                   std::min(bytes_in_progress(partial), layer.size)});
      });
      if (!st.has_blob(layer.digest)) {  // (another pull may have finished it meanwhile)
        fetch(client, layer, partial, o);
        verify_blob(st, client, layer, partial, o);
      } else {
        report(o, {status, layer.digest, layer.size, layer.size});
      }
      std::error_code ec;
      fs::remove(lock_file(partial), ec);  // safe: a waiter finds the blob present
      continue;
    }
    report(o, {"pulling " + layer.digest.substr(7, 12), layer.digest, layer.size, layer.size});
  }
  report(o, {"verifying sha256 digest", "", 0, 0});
  report(o, {"writing manifest", "", 0, 0});
  std::vector<std::string> previous;
  if (const auto old = st.find_manifest(name)) {
    previous.push_back(old->config.digest);
    for (const Layer& l : old->layers) previous.push_back(l.digest);
  }
  st.write_manifest_json(name, text);
  st.remove_unreferenced(previous);
  report(o, {"success", "", 0, 0});
}

}  // namespace corral::store::registry
