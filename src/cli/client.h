// The CLI's side of `corral serve`: a client of Ollama's HTTP API (docs/api.md of ollama/ollama)
// on cpp-httplib. Requests and answers are JSON; streamed answers are NDJSON, one object per line,
// handed to a callback as they arrive. An answer {"error": "..."} (in a 4xx/5xx, or as a line of a
// stream) becomes a ServerError carrying the server's message; no server at the address is a
// ConnectionError saying where it looked.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace httplib {
class Client;
class Result;
struct Response;
}  // namespace httplib

namespace corral::cli {

// Where the server listens, as Ollama reads OLLAMA_HOST (envconfig.Host): "host", "host:port",
// ":port", "[::1]:port", "scheme://host:port"; trailing slashes and surrounding quotes or spaces
// are dropped. Without a port: 11434, or 80/443 after an explicit http:// / https://.
struct HostAddress {
  std::string scheme = "http";
  std::string host = "127.0.0.1";
  int port = 11434;
  std::string url() const;  // "http://127.0.0.1:11434" (IPv6 hosts in brackets)
};

// Throws std::invalid_argument naming the value for a port that is not a number in 0..65535.
HostAddress parse_host(std::string_view value);
// CORRAL_HOST, or the default 127.0.0.1:11434.
HostAddress host_from_env();

// CORRAL_NO_SERVER set to a true value (1, true, yes): the CLI never talks to a server (list,
// show, cp, rm and create work on the local store; run loads the model in its own process).
bool server_disabled();

// No server answered at the address (connection refused, unknown host, timeout).
class ConnectionError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The server answered with an error; `status` is its HTTP status (200 for an error object inside
// a stream).
class ServerError : public std::runtime_error {
 public:
  ServerError(int status, const std::string& message)
      : std::runtime_error(message), status(status) {}
  int status;
};

// Called with every object of a streamed answer; return false to stop reading (the connection is
// closed, which cancels the request on the server).
using ObjectSink = std::function<bool(const nlohmann::json&)>;
// Bytes sent out of a total.
using SendProgress = std::function<void(uint64_t done, uint64_t total)>;

class Client {
 public:
  explicit Client(HostAddress address);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const HostAddress& address() const { return address_; }
  // "127.0.0.1:11434" (with the scheme when it is not http), as errors name the server.
  std::string where() const;

  // True when an HTTP server answers at the address (Ollama's heartbeat: HEAD /).
  bool alive();

  nlohmann::json get(const std::string& path);
  nlohmann::json post(const std::string& path, const nlohmann::json& body);
  nlohmann::json del(const std::string& path, const nlohmann::json& body);
  // POSTs `body` and hands each NDJSON object of the answer to `sink`, as it arrives. An object
  // holding "error" ends the stream with a ServerError.
  void stream(const std::string& path, const nlohmann::json& body, const ObjectSink& sink);

  // HEAD /api/blobs/<digest>: whether the server already holds the blob.
  bool has_blob(const std::string& digest);
  // POST /api/blobs/<digest> with the file's bytes, read as they are sent.
  void upload_blob(const std::filesystem::path& file, const std::string& digest,
                   const SendProgress& progress = {});

  // From another thread (a Ctrl+C watcher): closes the connection of the request in flight; a
  // stream() then returns as if its sink had said stop.
  void cancel();
  bool cancelled() const { return cancelled_.load(); }
  void clear_cancel() { cancelled_ = false; }

 private:
  [[noreturn]] void throw_transport_error(int error) const;
  // A ServerError; "model 'x' not found" also names this server and its store.
  [[noreturn]] void throw_server_error(int status, const std::string& message);
  // The answer, or the error it is (transport or HTTP status of 400 and above) thrown.
  const httplib::Response& checked(const httplib::Result& r);

  HostAddress address_;
  std::unique_ptr<httplib::Client> http_;
  std::atomic<bool> cancelled_{false};
};

// A client for CORRAL_HOST when a server answers there and CORRAL_NO_SERVER is not set; null
// otherwise.
std::unique_ptr<Client> connect_if_running();
// A client for CORRAL_HOST; throws ConnectionError when no server answers there.
std::unique_ptr<Client> connect_or_throw();

// An API timestamp (RFC 3339, as Go's time.Time marshals: "2024-05-01T12:34:56.123456789-07:00")
// as seconds since the Unix epoch; nullopt when it is not one. Go's zero time
// ("0001-01-01T00:00:00Z") gives kZeroTime.
std::optional<double> parse_api_time(std::string_view text);
constexpr double kZeroTime = -62135596800.0;

}  // namespace corral::cli
