#include "store/registry/download.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace corral::store::registry {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kSaveEvery = 8 << 20;  // progress is saved after this many new bytes
// Written bytes are handed to the disk every this many per part, while the download goes on, so
// that the fsync at the end (before the blob can become visible) finds little left to write.
constexpr uint64_t kWritebackEvery = 8 << 20;

struct Part {
  uint64_t start = 0, length = 0, done = 0;
};

// The shared state of one blob's download; every member is guarded by `mutex`.
struct Job {
  Client& client;
  std::string digest;
  uint64_t size = 0, part_size = 0;
  fs::path partial, state;
  int fd = -1;
  const PartOptions& options;
  const BlobProgress& progress;

  std::mutex mutex;
  std::vector<Part> parts;
  uint64_t unsaved = 0;
  Clock::time_point last_report{};
  bool stop = false;
  std::exception_ptr failure;
  std::string direct;  // the CDN URL the registry redirects the blob to (Client::blob_location)

  uint64_t completed() const {
    uint64_t n = 0;
    for (const Part& p : parts) n += p.done;
    return n;
  }

  void save() {  // caller holds mutex
    nlohmann::json j = {{"digest", digest}, {"size", size}, {"part_size", part_size}};
    for (const Part& p : parts) j["completed"].push_back(p.done);
    const fs::path tmp = state.string() + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << j.dump();
    out.close();
    std::error_code ec;
    if (out) {
      fs::rename(tmp, state, ec);
    } else {  // a full disk: the last saved state stays (it still describes bytes on disk)
      fs::remove(tmp, ec);
    }
    unsaved = 0;
  }

  void report(bool force) {  // caller holds mutex
    const auto now = Clock::now();
    if (!progress || (!force && now - last_report < std::chrono::milliseconds(100))) return;
    last_report = now;
    progress(completed(), size);
  }

  void fail(std::exception_ptr e) {  // caller holds mutex
    if (!failure) failure = e;
    stop = true;
  }
};

// The parts a progress file describes, if it belongs to this blob and its partial file exists.
std::vector<Part> load_parts(const Job& job) {
  std::error_code ec;
  if (!fs::exists(job.partial, ec)) return {};
  try {
    std::ifstream in(job.state, std::ios::binary);
    const auto j = nlohmann::json::parse(in);
    if (j.at("digest") != job.digest || j.at("size") != job.size ||
        j.at("part_size") != job.part_size) {
      return {};
    }
    std::vector<Part> parts;
    for (const auto& done : j.at("completed")) parts.push_back(Part{0, 0, done.get<uint64_t>()});
    return parts;
  } catch (const std::exception&) {
    return {};
  }
}

// One try at a part's missing bytes. Returns normally when the answer ended (complete or short);
// throws TransportError for a dropped connection and std::runtime_error for a wrong answer.
void fetch_range(Job& job, size_t index) {
  Part& part = job.parts[index];
  const uint64_t from = part.start + part.done, to = part.start + part.length - 1;
  std::string problem;
  const std::string path = "/blobs/" + job.digest;
  uint64_t written_back = from;
  const auto sink = [&](const Response& head, const char* data, size_t n) {
    const bool whole = from == 0 && to + 1 == job.size;
    if (head.status != 206 && !(head.status == 200 && whole)) {
      problem = "answered " + std::to_string(head.status) + " to a range request (expected 206)";
      return false;
    }
    std::unique_lock lock(job.mutex);
    if (job.stop) return false;
    if (job.options.cancelled && job.options.cancelled()) {
      job.fail(std::make_exception_ptr(std::runtime_error("pull cancelled")));
      return false;
    }
    if (part.done + n > part.length) {
      problem = "sent more than the " + std::to_string(part.length) + " bytes asked for";
      return false;
    }
    for (size_t written = 0; written < n;) {  // a short write: the rest meets the error, if any
      const off_t at = static_cast<off_t>(part.start + part.done + written);
      const ssize_t w = ::pwrite(job.fd, data + written, n - written, at);
      if (w <= 0) {
        problem =
            "cannot write " + job.partial.string() + ": " + std::strerror(w < 0 ? errno : ENOSPC);
        part.done += written;
        return false;
      }
      written += static_cast<size_t>(w);
    }
    part.done += n;
    job.unsaved += n;
    if (job.unsaved >= kSaveEvery) job.save();
    try {
      job.report(false);
    } catch (...) {
      job.fail(std::current_exception());
      return false;
    }
    const uint64_t end = part.start + part.done;
    if (end - written_back >= kWritebackEvery) {
      lock.unlock();
      ::sync_file_range(job.fd, static_cast<off_t>(written_back),
                        static_cast<off_t>(end - written_back), SYNC_FILE_RANGE_WRITE);
      written_back = end;
    }
    return true;
  };
  const std::string range = "Range: bytes=" + std::to_string(from) + "-" + std::to_string(to);
  std::string direct;
  {
    std::lock_guard lock(job.mutex);
    direct = job.direct;
  }
  Response r;
  try {
    r = direct.empty() ? job.client.get(path, {range}, 0, sink)
                       : http_get(direct, {range}, job.client.options().http, 0, sink);
  } catch (const TransportError&) {
    if (problem.empty()) throw;
  }
  const std::string where = (direct.empty() ? job.client.repository_url() + path : direct) +
                            " (bytes " + std::to_string(from) + "-" + std::to_string(to) + ")";
  if (!problem.empty()) throw std::runtime_error(where + ": " + problem);
  if (!direct.empty() && r.status >= 400 && r.status < 500) {
    // A CDN's signed URL expires: the registry is asked for a new one.
    const std::string fresh = job.client.blob_location(job.digest);
    std::lock_guard lock(job.mutex);
    if (job.direct == direct) job.direct = fresh;
    throw TransportError(where + ": the direct URL answered " + std::to_string(r.status));
  }
  if (retryable_status(r.status)) {
    throw TransportError(where + ": the registry answered " + std::to_string(r.status));
  }
  if (r.status < 200 || r.status >= 300) {
    throw std::runtime_error(where + ": the registry answered " + std::to_string(r.status) +
                             " (expected 206 with the blob's bytes)");
  }
}

void run_part(Job& job, size_t index) {
  int attempt = 0;
  for (;;) {
    uint64_t before;
    {
      std::lock_guard lock(job.mutex);
      if (job.stop) return;
      before = job.parts[index].done;
      if (before == job.parts[index].length) return;
    }
    try {
      fetch_range(job, index);
      continue;  // a short answer: ask again for the rest
    } catch (const TransportError&) {
      std::lock_guard lock(job.mutex);
      if (job.stop) return;
      if (job.parts[index].done > before) attempt = 0;
      if (++attempt >= job.client.options().max_attempts) {
        job.fail(std::current_exception());
        return;
      }
      job.save();
    } catch (...) {
      std::lock_guard lock(job.mutex);
      job.fail(std::current_exception());
      return;
    }
    job.client.backoff(attempt);
  }
}

}  // namespace

fs::path progress_file(const fs::path& partial) { return partial.string() + ".json"; }

void download_blob(Client& client, const std::string& digest, uint64_t size,
                   const fs::path& partial, const PartOptions& options,
                   const BlobProgress& progress) {
  const uint64_t min_part = std::max<uint64_t>(options.min_part_size, 1);
  const uint64_t n_parts =
      std::clamp<uint64_t>((size + min_part - 1) / min_part, 1, std::max(options.max_parts, 1));
  Job job{client,   digest,
          size,     (size + n_parts - 1) / n_parts,
          partial,  progress_file(partial),
          -1,       options,
          progress, {},
          {},       0,
          {},       false,
          {},       {}};
  job.direct = client.blob_location(digest);
  const std::vector<Part> saved = load_parts(job);
  for (uint64_t i = 0; i < n_parts; ++i) {
    const uint64_t start = std::min(i * job.part_size, size);
    const uint64_t length = std::min(job.part_size, size - start);
    const uint64_t done = saved.size() == n_parts ? saved[i].done : 0;
    job.parts.push_back(Part{start, length, std::min(done, length)});
  }
  if (saved.empty()) {
    std::error_code ec;
    fs::remove(partial, ec);
  }
  job.fd = ::open(partial.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  const std::unique_ptr<int, void (*)(int*)> close_fd(&job.fd, [](int* fd) {
    if (*fd >= 0) ::close(*fd);
  });
  if (job.fd < 0 || ::ftruncate(job.fd, static_cast<off_t>(size)) != 0) {
    throw std::runtime_error("cannot create " + partial.string() + ": " + std::strerror(errno));
  }
  {
    std::lock_guard lock(job.mutex);
    job.save();
    job.report(true);
  }
  std::vector<std::thread> threads;
  for (size_t i = 0; i < job.parts.size(); ++i) threads.emplace_back(run_part, std::ref(job), i);
  for (std::thread& t : threads) t.join();
  const bool synced = ::fsync(job.fd) == 0;
  std::lock_guard lock(job.mutex);
  job.save();
  if (job.failure) std::rethrow_exception(job.failure);
  if (!synced) throw std::runtime_error("cannot write " + partial.string());
  if (options.cancelled && options.cancelled()) throw std::runtime_error("pull cancelled");
  job.report(true);
  std::error_code ec;
  fs::remove(job.state, ec);
}

}  // namespace corral::store::registry
