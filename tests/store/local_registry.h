// A registry for pull tests, on loopback only: Debian's docker-registry (the CNCF distribution
// server) on a free port with its storage in a temp folder, filled with plain HTTP calls
// (POST /v2/<name>/blobs/uploads/, PUT ...?digest=, PUT /v2/<name>/manifests/<tag>), with or
// without authentication (htpasswd, or token auth with token_server.h); and a
// FaultProxy in front of it that drops connections mid-blob, answers 503, corrupts a byte,
// stalls, or asks for a Bearer token, counting the blob bytes it serves; it also forwards a push's
// HEAD, POST, PATCH and PUT requests (with relative Locations, so the client keeps coming back
// through it), counting the bytes uploaded and dropping chosen PATCHes.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "store/digest.h"

namespace corral::testing {

inline int free_loopback_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class LocalRegistry {
 public:
  static constexpr const char* kBinary = "/usr/bin/docker-registry";

  // `auth_yaml`: the body of the configuration's `auth:` section (e.g. TokenServer's, or an
  // htpasswd one), indented by two spaces; empty: no authentication.
  explicit LocalRegistry(const std::filesystem::path& dir, const std::string& auth_yaml = "")
      : port_(free_loopback_port()) {
    if (!std::filesystem::exists(kBinary)) {
      throw std::runtime_error(std::string(kBinary) +
                               " is missing (apt-get install docker-registry; scripts/setup.sh)");
    }
    const auto config = dir / "registry.yml";
    std::ofstream(config) << "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                          << "    rootdirectory: " << (dir / "registry").string() << "\n"
                          << "http:\n  addr: 127.0.0.1:" << port_ << "\n"
                          << (auth_yaml.empty() ? "" : "auth:\n" + auth_yaml);
    const std::string log = (dir / "registry.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      freopen(log.c_str(), "w", stdout);
      freopen(log.c_str(), "a", stderr);
      execl(kBinary, kBinary, "serve", config.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    httplib::Client c("127.0.0.1", port_);
    for (int i = 0; i < 500; ++i) {
      if (auto r = c.Get("/v2/"); r && (r->status == 200 || r->status == 401)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("docker-registry did not answer on port " + std::to_string(port_) +
                             " (see " + log + ")");
  }
  ~LocalRegistry() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
  }
  LocalRegistry(const LocalRegistry&) = delete;
  LocalRegistry& operator=(const LocalRegistry&) = delete;

  int port() const { return port_; }

  // Sent with the uploads below when the registry has authentication ("Bearer ...", "Basic ...").
  std::string authorization;

  // Uploads a blob (monolithic upload) and returns its digest.
  std::string push_blob(const std::string& repo, const std::string& bytes) {
    const std::string digest = store::sha256_digest(bytes);
    httplib::Client c("127.0.0.1", port_);
    if (!authorization.empty()) c.set_default_headers({{"Authorization", authorization}});
    auto r = c.Post("/v2/" + repo + "/blobs/uploads/", "", "application/octet-stream");
    if (!r || r->status != 202) throw std::runtime_error("upload start failed for " + repo);
    std::string location = r->get_header_value("Location");
    if (location.starts_with("http")) location = location.substr(location.find('/', 8));
    location +=
        (location.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
    r = c.Put(location, bytes, "application/octet-stream");
    if (!r || r->status != 201) throw std::runtime_error("upload failed for " + digest);
    return digest;
  }
  // Uploads a file as a blob, streamed from disk, and returns its digest.
  std::string push_blob_file(const std::string& repo, const std::filesystem::path& file) {
    const std::string digest = store::sha256_file(file);
    httplib::Client c("127.0.0.1", port_);
    c.set_write_timeout(300);
    auto r = c.Post("/v2/" + repo + "/blobs/uploads/", "", "application/octet-stream");
    if (!r || r->status != 202) throw std::runtime_error("upload start failed for " + repo);
    std::string location = r->get_header_value("Location");
    if (location.starts_with("http")) location = location.substr(location.find('/', 8));
    location +=
        (location.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") + digest;
    auto in = std::make_shared<std::ifstream>(file, std::ios::binary);
    r = c.Put(
        location, std::filesystem::file_size(file),
        [in](size_t offset, size_t length, httplib::DataSink& sink) {
          std::string buf(std::min<size_t>(length, 1 << 20), '\0');
          in->seekg(static_cast<std::streamoff>(offset));
          in->read(buf.data(), static_cast<std::streamsize>(buf.size()));
          return in->gcount() > 0 && sink.write(buf.data(), static_cast<size_t>(in->gcount()));
        },
        "application/octet-stream");
    if (!r || r->status != 201) throw std::runtime_error("upload failed for " + digest);
    return digest;
  }
  void push_manifest(const std::string& repo, const std::string& tag, const std::string& json) {
    httplib::Client c("127.0.0.1", port_);
    if (!authorization.empty()) c.set_default_headers({{"Authorization", authorization}});
    auto r = c.Put("/v2/" + repo + "/manifests/" + tag, json,
                   "application/vnd.docker.distribution.manifest.v2+json");
    if (!r || r->status != 201) {
      throw std::runtime_error("manifest upload failed: " + (r ? r->body : std::string("-")));
    }
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

// Forwards requests to a registry; each fault counter is used up one blob answer at a time.
class FaultProxy {
 public:
  // PATCHes past a blob's first chunk whose connection is closed unanswered (their bytes never
  // reach the registry).
  std::atomic<int> patch_drops{0};
  // PATCHes of which the registry gets the first half before the connection is closed unanswered.
  std::atomic<int> patch_half_drops{0};
  std::atomic<uint64_t> upload_bytes{0};  // PATCH and PUT body bytes of blob uploads forwarded
  std::atomic<int> mounts{0};             // cross-repository mounts the registry made
  std::atomic<int> push_token_requests{0};
  std::atomic<int> drops{0};        // blob answers cut after half their bytes
  std::atomic<int> unavailable{0};  // blob requests answered 503
  std::atomic<int> corruptions{0};  // blob answers with one byte flipped
  std::atomic<bool> stall{false};   // blob answers stop after half their bytes, until cleared
  std::atomic<int> stalls{0};       // blob answers that stop after half their bytes and hang (20 s)
  std::atomic<bool> require_token{false};
  std::atomic<int> redirect_port{0};  // blob requests answered 307 to http://localhost:<port>
  std::atomic<int> forbidden{0};      // blob requests answered 403 (an expired signed URL)
  std::atomic<int> blob_requests{0};
  std::atomic<bool> saw_authorization{false};
  std::atomic<uint64_t> blob_bytes{0};  // blob bytes sent
  std::atomic<int> token_requests{0};
  std::string token_query;  // the last token request's query string

  explicit FaultProxy(int upstream_port) : upstream_(upstream_port) {
    // A thread per connection of two pulls' 16 parts each, stalled ones included.
    server_.new_task_queue = [] { return new httplib::ThreadPool(48); };
    server_.Get("/token", [this](const httplib::Request& req, httplib::Response& res) {
      ++token_requests;
      const std::string scope = req.get_param_value("scope");
      token_query = "service=" + req.get_param_value("service") + "&scope=" + scope;
      if (scope.ends_with(":pull,push")) {
        ++push_token_requests;
        res.set_content(R"({"token": "t0ken-push"})", "application/json");
      } else {
        res.set_content(R"({"token": "t0ken"})", "application/json");
      }
    });
    server_.Get(R"(/v2/.*)",
                [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
    const auto forward = [this](const httplib::Request& req, httplib::Response& res) {
      handle_push(req, res);
    };
    server_.Post(R"(/v2/.*)", forward);
    server_.Patch(R"(/v2/.*)", forward);
    server_.Put(R"(/v2/.*)", forward);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FaultProxy() {
    stopping_ = true;
    server_.stop();
    thread_.join();
  }

  int port() const { return port_; }

 private:
  // A registry behind token auth: reads need a token for the repository's pull scope, writes one
  // for its pull,push scope. True when the request may go on.
  bool authorized(const httplib::Request& req, httplib::Response& res) {
    const bool write = req.method != "GET" && req.method != "HEAD";
    const std::string auth = req.get_header_value("Authorization");
    if (!require_token || auth == "Bearer t0ken-push" || (!write && auth == "Bearer t0ken")) {
      return true;
    }
    // /v2/<ns>/<model>/...
    const size_t from = 4, to = req.path.find('/', req.path.find('/', from) + 1);
    const std::string repo = req.path.substr(from, to - from);
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer realm=\"http://127.0.0.1:" + std::to_string(port_) +
                                           "/token\",service=\"test\",scope=\"repository:" + repo +
                                           (write ? ":pull,push\"" : ":pull\""));
    return false;
  }

  // Copies the upstream answer's status, body and upload headers, with Location made relative.
  static void relay(const httplib::Result& up, httplib::Response& res) {
    if (!up) {
      res.status = 502;
      return;
    }
    res.status = up->status;
    for (const char* h : {"Range", "Docker-Upload-UUID", "Docker-Content-Digest"}) {
      if (up->has_header(h)) res.set_header(h, up->get_header_value(h));
    }
    if (up->has_header("Location")) {
      std::string location = up->get_header_value("Location");
      if (location.starts_with("http")) location = location.substr(location.find('/', 8));
      res.set_header("Location", location);
    }
    if (!up->body.empty()) res.set_content(up->body, up->get_header_value("Content-Type"));
  }

  void handle_push(const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    httplib::Client c("127.0.0.1", upstream_);
    const bool upload = req.path.find("/blobs/uploads/") != std::string::npos;
    const std::string type = req.get_header_value("Content-Type");
    if (req.method == "POST") {
      auto up = c.Post(req.target, req.body, type.empty() ? "application/octet-stream" : type);
      if (up && up->status == 201 && req.target.find("mount=") != std::string::npos) ++mounts;
      relay(up, res);
      return;
    }
    bool drop = req.method == "PATCH" && !req.get_header_value("Content-Range").starts_with("0-") &&
                take(patch_drops);
    if (req.method == "PATCH" && !drop && req.body.size() > 1 && take(patch_half_drops)) {
      drop = true;
      const std::string range = req.get_header_value("Content-Range");
      const size_t from = std::stoull(range.substr(0, range.find('-')));
      const size_t half = req.body.size() / 2;
      upload_bytes += half;
      c.Patch(req.target,
              {{"Content-Range", std::to_string(from) + "-" + std::to_string(from + half - 1)}},
              req.body.substr(0, half), type);
    }
    if (drop) {
      // The connection is closed after the status line: the client never learns the answer.
      res.set_content_provider(1, "text/plain",
                               [](size_t, size_t, httplib::DataSink&) { return false; });
      return;
    }
    if (upload) upload_bytes += req.body.size();
    httplib::Headers h;
    if (req.has_header("Content-Range")) {
      h.emplace("Content-Range", req.get_header_value("Content-Range"));
    }
    relay(req.method == "PATCH" ? c.Patch(req.target, h, req.body, type)
                                : c.Put(req.target, h, req.body, type),
          res);
  }

  void handle(const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    const bool blob = req.path.find("/blobs/sha256:") != std::string::npos;
    if (req.has_header("Authorization")) saw_authorization = true;
    if (blob) ++blob_requests;
    if (req.method == "HEAD" || (!blob && req.path.find("/blobs/uploads/") != std::string::npos)) {
      httplib::Client c("127.0.0.1", upstream_);
      relay(req.method == "HEAD" ? c.Head(req.target) : c.Get(req.target), res);
      return;
    }
    if (blob && take(unavailable)) {
      res.status = 503;
      return;
    }
    if (blob && take(forbidden)) {
      res.status = 403;
      return;
    }
    if (blob && redirect_port != 0) {
      res.status = 307;
      res.set_header("Location", "http://localhost:" + std::to_string(redirect_port) + req.path +
                                     "?signature=x");
      return;
    }
    httplib::Client c("127.0.0.1", upstream_);
    httplib::Headers h;
    if (req.has_header("Accept")) h.emplace("Accept", req.get_header_value("Accept"));
    const auto forward = [&] {
      auto up = c.Get(req.path, h);
      res.status = up ? up->status : 502;
      if (up) res.set_content(up->body, up->get_header_value("Content-Type"));
    };
    if (!blob) return forward();
    auto head = c.Head(req.path, h);
    if (!head) {
      res.status = 502;
      return;
    }
    if (head->status != 200) return forward();
    // httplib answers the Range (206, Content-Range) and asks the content provider for spans of
    // the whole blob, which come from ranged GETs upstream, streamed: nothing is held in memory.
    const size_t size = std::stoull("0" + head->get_header_value("Content-Length"));
    size_t from = 0, to = size - 1;
    if (req.ranges.size() == 1) {
      if (req.ranges[0].first >= 0) from = req.ranges[0].first;
      if (req.ranges[0].second >= 0) to = std::min<size_t>(req.ranges[0].second, to);
    }
    // Faults hit answers that have a middle: a one-byte probe (Client::blob_location) goes through.
    const size_t half = (to - from + 1) / 2;
    const size_t corrupt_at =
        from <= size / 2 && size / 2 <= to && take(corruptions) ? size / 2 : size;
    const bool hang = half > 0 && take(stalls);
    const size_t cut = half > 0 && (take(drops) || stall || hang) ? from + half : size;
    res.set_content_provider(
        size, "application/octet-stream",
        [this, path = req.path, cut, corrupt_at, hang](size_t offset, size_t length,
                                                       httplib::DataSink& sink) {
          if (offset >= cut) {
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while ((stall || hang) && !stopping_ && std::chrono::steady_clock::now() < deadline) {
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            return false;  // the connection is closed mid-body
          }
          const size_t end = std::min(offset + length, cut);
          httplib::Client up("127.0.0.1", upstream_);
          const httplib::Headers range = {
              {"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(end - 1)}};
          size_t at = offset;
          bool written = true;
          std::string piece;
          auto r = up.Get(path, range, [&](const char* data, size_t n) {
            n = std::min(n, end - at);
            piece.assign(data, n);
            if (corrupt_at >= at && corrupt_at < at + n) piece[corrupt_at - at] ^= 0x01;
            written = sink.write(piece.data(), n);
            if (written) {
              blob_bytes += n;
              at += n;
            }
            return written && at < end;
          });
          return written && at > offset;  // httplib asks again for what is left
        });
  }

  static bool take(std::atomic<int>& counter) {
    int v = counter.load();
    while (v > 0 && !counter.compare_exchange_weak(v, v - 1)) {
    }
    return v > 0;
  }

  int upstream_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  httplib::Server server_;
  std::thread thread_;
};

}  // namespace corral::testing
