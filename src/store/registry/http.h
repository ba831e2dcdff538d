// HTTP requests for the registry client, on libcurl: a whole small body (a manifest, a token) or a
// body streamed to a sink (a blob part); HEAD, POST, PATCH and PUT for pushes, with a request body
// from memory or streamed from a byte range of a file. GET and HEAD follow redirects (registries
// send blobs to a CDN); curl never forwards our Authorization header to another host. Requests
// with a body do not follow them: the caller sees the answer and its Location.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace corral::store::registry {

// The request never got a complete answer: no connection, a dropped connection, a stall. Worth
// retrying.
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Nothing listens at the address (connection refused). A TransportError, so a blob part is
// retried, but a manifest fetch gives up at once: the registry is not there, as Ollama reports.
class ConnectError : public TransportError {
 public:
  using TransportError::TransportError;
};

struct HttpOptions {
  bool allow_http = false;  // plain http (the registry's and redirects'); else https only
  long connect_timeout_s = 30;
  long stall_timeout_s = 60;  // less than 1 byte/s for this long: a stalled transfer
  bool follow_redirects = true;
};

struct Response {
  long status = 0;
  std::map<std::string, std::string> headers;  // names in lower case, of the last answer
  std::string body;  // the whole body, or, when a sink took a 2xx body, nothing
};

// Gets the answer's status and headers with each piece of a 2xx body. Return false to abort the
// transfer (it then ends with a TransportError).
using BodySink = std::function<bool(const Response& head, const char* data, size_t size)>;

// What a POST, PATCH or PUT sends: `memory`'s bytes, else `length` bytes of `file` from
// `offset` (read as they are sent, never whole), else nothing.
struct RequestBody {
  const std::string* memory = nullptr;
  std::filesystem::path file;
  uint64_t offset = 0, length = 0;
  // Told the bytes handed to the connection so far; return false to abort the request (it then
  // ends with a TransportError).
  std::function<bool(uint64_t sent)> on_sent;

  uint64_t size() const { return memory ? memory->size() : length; }
};

// `method` ("GET", "HEAD", "POST", "PATCH", "PUT", ...) to `url`, as http_get does otherwise.
Response http_request(const std::string& method, const std::string& url,
                      const std::vector<std::string>& headers, const HttpOptions& options,
                      size_t max_body, const RequestBody& body = {}, const BodySink& sink = {});

// GETs `url` with extra header lines ("Name: value"). The body of a 2xx answer goes to `sink` when
// one is given; any other body is kept in Response::body. A body longer than `max_body` bytes, a
// TLS failure, an unknown host or a refused protocol (http without allow_http) end the request
// with a std::runtime_error naming the URL; other failures are TransportErrors.
Response http_get(const std::string& url, const std::vector<std::string>& headers,
                  const HttpOptions& options, size_t max_body, const BodySink& sink = {});

}  // namespace corral::store::registry
