#include "store/registry/http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <mutex>

namespace corral::store::registry {
namespace {

struct Transfer {
  CURL* curl = nullptr;
  Response* response = nullptr;
  const BodySink* sink = nullptr;
  size_t max_body = 0;
  const RequestBody* body = nullptr;
  int fd = -1;        // the body's file, when it has one
  uint64_t sent = 0;  // body bytes handed to curl
  std::string read_error{};
  bool too_large = false;
  bool stalled = false;
  std::chrono::seconds stall_timeout{60};
  curl_off_t last_bytes = -1;
  std::chrono::steady_clock::time_point last_change = std::chrono::steady_clock::now();
};

// Called by curl about once a second and whenever bytes move: ends a transfer that received
// nothing for stall_timeout (curl's own low-speed check averages over several seconds).
int on_progress(void* user, curl_off_t, curl_off_t received, curl_off_t, curl_off_t uploaded) {
  auto* t = static_cast<Transfer*>(user);
  const auto now = std::chrono::steady_clock::now();
  if (received + uploaded != t->last_bytes) {
    t->last_bytes = received + uploaded;
    t->last_change = now;
  } else if (now - t->last_change > t->stall_timeout) {
    t->stalled = true;
    return 1;
  }
  return 0;
}

size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string line(data, size * n);
  if (line.starts_with("HTTP/")) t->response->headers.clear();  // a new answer (a redirect)
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    const size_t b = value.find_first_not_of(" \t");
    const size_t e = value.find_last_not_of(" \t\r\n");
    t->response->headers[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->sink && *t->sink && status >= 200 && status < 300) {
    t->response->status = status;
    return (*t->sink)(*t->response, data, size * n) ? size * n : 0;
  }
  if (t->response->body.size() + size * n > t->max_body) {
    t->too_large = true;
    return 0;
  }
  t->response->body.append(data, size * n);
  return size * n;
}

// Hands curl the next piece of the request body.
size_t on_read(char* buffer, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const RequestBody& b = *t->body;
  const size_t want = static_cast<size_t>(std::min<uint64_t>(size * n, b.size() - t->sent));
  if (want == 0) return 0;
  if (b.memory) {
    std::memcpy(buffer, b.memory->data() + t->sent, want);
  } else {
    const ssize_t got = ::pread(t->fd, buffer, want, static_cast<off_t>(b.offset + t->sent));
    if (got <= 0) {
      t->read_error = "cannot read " + b.file.string() + ": " +
                      (got == 0 ? std::string("the file is shorter than expected")
                                : std::string(std::strerror(errno)));
      return CURL_READFUNC_ABORT;
    }
    t->sent += static_cast<uint64_t>(got);
    if (b.on_sent && !b.on_sent(t->sent)) return CURL_READFUNC_ABORT;
    return static_cast<size_t>(got);
  }
  t->sent += want;
  if (b.on_sent && !b.on_sent(t->sent)) return CURL_READFUNC_ABORT;
  return want;
}

// Rewinds the body when curl must send it again (a redirect or an authentication retry).
int on_seek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->body->size()) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->sent = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

}  // namespace

Response http_get(const std::string& url, const std::vector<std::string>& headers,
                  const HttpOptions& options, size_t max_body, const BodySink& sink) {
  return http_request("GET", url, headers, options, max_body, {}, sink);
}

Response http_request(const std::string& method, const std::string& url,
                      const std::vector<std::string>& headers, const HttpOptions& options,
                      size_t max_body, const RequestBody& body, const BodySink& sink) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  curl_slist* list = nullptr;
  const bool sends = method != "GET" && method != "HEAD";
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  if (sends) list = curl_slist_append(list, "Expect:");
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list_owner(list, curl_slist_free_all);

  Response response;
  Transfer t{curl.get(), &response, &sink, max_body};
  t.body = &body;
  if (!body.memory && !body.file.empty()) {
    t.fd = ::open(body.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (t.fd < 0) {
      throw std::runtime_error("cannot open " + body.file.string() + ": " + std::strerror(errno));
    }
  }
  const std::unique_ptr<int, void (*)(int*)> close_fd(&t.fd, [](int* fd) {
    if (*fd >= 0) ::close(*fd);
  });
  t.stall_timeout = std::chrono::seconds(options.stall_timeout_s);
  CURL* c = curl.get();
  const char* protocols = options.allow_http ? "http,https" : "https";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, options.follow_redirects && !sends ? 1L : 0L);
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (sends) {
    // Every method with a body goes as an upload (streamed by on_read, its length announced up
    // front); the method is then named. No "Expect: 100-continue" wait: the answer to a request
    // the registry refuses comes back anyway.
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "corral/" CORRAL_VERSION);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  const CURLcode rc = curl_easy_perform(c);
  if (t.too_large) {
    throw std::runtime_error(url + ": the answer is larger than the " + std::to_string(max_body) +
                             " bytes expected");
  }
  if (!t.read_error.empty()) throw std::runtime_error(url + ": " + t.read_error);
  if (t.stalled) {
    throw TransportError(url + ": nothing received for " + std::to_string(options.stall_timeout_s) +
                         " s");
  }
  const std::string what = url + ": " + curl_easy_strerror(rc);
  switch (rc) {
    case CURLE_OK:
      break;
    case CURLE_SSL_CONNECT_ERROR:  // the same on every try, so not retried
      if (options.allow_http) throw std::runtime_error(what);
      throw std::runtime_error(what + " (a registry that speaks plain http needs --insecure)");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_TOO_MANY_REDIRECTS:
      throw std::runtime_error(what);
    case CURLE_COULDNT_CONNECT:
      throw ConnectError(what);
    default:
      throw TransportError(what);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

}  // namespace corral::store::registry
