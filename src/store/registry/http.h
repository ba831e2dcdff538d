// HTTP GETs for the registry client, on libcurl: a whole small body (a manifest, a token) or a
// body streamed to a sink (a blob part). Redirects are followed (registries send blobs to a CDN);
// curl never forwards our Authorization header to another host.
#pragma once

#include <cstddef>
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

// GETs `url` with extra header lines ("Name: value"). The body of a 2xx answer goes to `sink` when
// one is given; any other body is kept in Response::body. A body longer than `max_body` bytes, a
// TLS failure, an unknown host or a refused protocol (http without allow_http) end the request
// with a std::runtime_error naming the URL; other failures are TransportErrors.
Response http_get(const std::string& url, const std::vector<std::string>& headers,
                  const HttpOptions& options, size_t max_body, const BodySink& sink = {});

}  // namespace corral::store::registry
