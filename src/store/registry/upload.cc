#include "store/registry/upload.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <stdexcept>

namespace corral::store::registry {
namespace {

using Clock = std::chrono::steady_clock;

const char* const kOctets = "Content-Type: application/octet-stream";

std::string with_query(const std::string& url, const std::string& param) {
  return url + (url.find('?') == std::string::npos ? "?" : "&") + param;
}

// Where the registry wants the session's next request: Docker-Upload-Location (Ollama's
// registry), else Location, made absolute.
std::string next_location(const std::string& request_url, const Response& r) {
  auto it = r.headers.find("docker-upload-location");
  if (it == r.headers.end() || it->second.empty()) it = r.headers.find("location");
  if (it == r.headers.end() || it->second.empty()) {
    throw std::runtime_error(request_url + ": the registry answered " + std::to_string(r.status) +
                             " without a Location for the upload");
  }
  return resolve_location(request_url, it->second);
}

std::string failure(const std::string& url, const Response& r, const std::string& expected) {
  return url + ": the registry answered " + std::to_string(r.status) + " (" +
         r.body.substr(0, 200) + "; expected " + expected + ")";
}

// A request without a body, retried on dropped connections, 5xx and 429.
Response retried(Client& client, const std::string& method, const std::string& target,
                 std::vector<std::string> headers = {}, const RequestBody& body = {}) {
  for (int attempt = 1;; ++attempt) {
    try {
      Response r = client.request(method, target, headers, body);
      if (!retryable_status(r.status) || attempt >= client.options().max_attempts) return r;
    } catch (const TransportError&) {
      if (attempt >= client.options().max_attempts) throw;
    }
    client.backoff(attempt);
  }
}

class Upload {
 public:
  Upload(Client& client, const Layer& layer, const std::filesystem::path& file,
         const UploadOptions& options, const BlobProgress& progress)
      : client_(client), layer_(layer), file_(file), options_(options), progress_(progress) {}

  // Opens a session (with a mount request when `from` is given). True: the blob was mounted.
  bool start(const std::string& from) {
    std::string target = "/blobs/uploads/";
    if (!from.empty()) target += "?mount=" + layer_.digest + "&from=" + from;
    const Response r = retried(client_, "POST", target);
    const std::string url = client_.repository_url() + target;
    if (r.status == 201 && !from.empty()) return true;
    if (r.status != 202) throw std::runtime_error(failure(url, r, "202 with an upload URL"));
    location_ = next_location(url, r);
    offset_ = 0;
    return false;
  }

  void send_all() {
    int attempt = 0;
    while (offset_ < layer_.size) {
      const uint64_t length =
          std::min<uint64_t>(std::max<uint64_t>(options_.chunk_size, 1), layer_.size - offset_);
      if (send_chunk(length)) {
        attempt = 0;
        continue;
      }
      if (++attempt >= client_.options().max_attempts) {
        throw std::runtime_error(location_ + ": uploading " + layer_.digest + " failed " +
                                 std::to_string(attempt) + " times; last: " + last_error_);
      }
      client_.backoff(attempt);
      recover();
    }
    report(layer_.size, true);
  }

  void commit() {
    const std::string url = with_query(location_, "digest=" + layer_.digest);
    Response r;
    try {
      r = retried(client_, "PUT", url, {kOctets}, RequestBody{});
      if (r.status == 201 || r.status == 204) return;
    } catch (const TransportError&) {
    }
    // A commit whose answer was lost may have worked.
    if (retried(client_, "HEAD", "/blobs/" + layer_.digest).status == 200) return;
    throw std::runtime_error(failure(url, r, "201 for the finished blob " + layer_.digest));
  }

 private:
  // One PATCH; true when the registry took the chunk.
  bool send_chunk(uint64_t length) {
    const uint64_t from = offset_;
    RequestBody body;
    body.file = file_;
    body.offset = from;
    body.length = length;
    // A progress callback that throws (a client gone) must not unwind through curl: the request
    // is aborted and the exception rethrown here.
    std::exception_ptr stopped;
    body.on_sent = [&](uint64_t sent) {
      try {
        report(from + sent, false);
        return true;
      } catch (...) {
        stopped = std::current_exception();
        return false;
      }
    };
    const std::string range =
        "Content-Range: " + std::to_string(from) + "-" + std::to_string(from + length - 1);
    try {
      const Response r = client_.request("PATCH", location_, {kOctets, range}, body);
      if (r.status == 202 || r.status == 204) {
        location_ = next_location(location_, r);
        offset_ = from + length;
        return true;
      }
      if (!retryable_status(r.status) && r.status != 416) {
        throw std::runtime_error(failure(location_, r, "202 for bytes " + range.substr(15)));
      }
      last_error_ = "the registry answered " + std::to_string(r.status);
    } catch (const TransportError& e) {
      if (stopped) std::rethrow_exception(stopped);
      last_error_ = e.what();
    }
    report(from, true);  // what was in flight may not have arrived
    return false;
  }

  // Asks the session where it stands; a session the registry no longer knows is opened anew.
  void recover() {
    try {
      const Response r = client_.request("GET", location_, {});
      if (r.status == 204 || r.status == 202) {
        location_ = next_location(location_, r);
        const auto range = r.headers.find("range");
        uint64_t next = 0;
        if (range != r.headers.end()) {
          const size_t dash = range->second.find('-');
          // "0-N": bytes 0..N are there (the distribution server says "0-0" for none, too).
          if (dash != std::string::npos) next = std::stoull(range->second.substr(dash + 1)) + 1;
          if (next == 1) next = 0;
        }
        offset_ = std::min(next, layer_.size);
        return;
      }
      if (retryable_status(r.status)) return;  // try the same chunk again
    } catch (const TransportError&) {
      return;
    } catch (const std::invalid_argument&) {
    } catch (const std::out_of_range&) {
    }
    start("");
  }

  void report(uint64_t completed, bool force) {
    if (!progress_) return;
    const auto now = Clock::now();
    if (!force && now - last_report_ < std::chrono::milliseconds(100)) return;
    last_report_ = now;
    progress_(std::min(completed, layer_.size), layer_.size);
  }

  Client& client_;
  const Layer& layer_;
  std::filesystem::path file_;
  const UploadOptions& options_;
  const BlobProgress& progress_;
  std::string location_;
  uint64_t offset_ = 0;
  std::string last_error_;
  Clock::time_point last_report_{};
};

}  // namespace

BlobPushed push_blob(Client& client, const Layer& layer, const std::filesystem::path& file,
                     const std::string& mount_from, const UploadOptions& options,
                     const BlobProgress& progress) {
  const std::string blob = "/blobs/" + layer.digest;
  const Response head = retried(client, "HEAD", blob);
  if (head.status == 200) {
    if (progress) progress(layer.size, layer.size);
    return BlobPushed::kExisted;
  }
  if (head.status != 404) {
    throw std::runtime_error(failure(client.repository_url() + blob, head, "200 or 404"));
  }
  Upload upload(client, layer, file, options, progress);
  if (upload.start(mount_from)) {
    if (progress) progress(layer.size, layer.size);
    return BlobPushed::kMounted;
  }
  if (progress) progress(0, layer.size);
  upload.send_all();
  upload.commit();
  return BlobPushed::kUploaded;
}

}  // namespace corral::store::registry
