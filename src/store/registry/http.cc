#include "store/registry/http.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <memory>
#include <mutex>

namespace corral::store::registry {
namespace {

struct Transfer {
  CURL* curl = nullptr;
  Response* response = nullptr;
  const BodySink* sink = nullptr;
  size_t max_body = 0;
  bool too_large = false;
  bool stalled = false;
  std::chrono::seconds stall_timeout{60};
  curl_off_t last_bytes = -1;
  std::chrono::steady_clock::time_point last_change = std::chrono::steady_clock::now();
};

// Called by curl about once a second and whenever bytes move: ends a transfer that received
// nothing for stall_timeout (curl's own low-speed check averages over several seconds).
int on_progress(void* user, curl_off_t, curl_off_t received, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  const auto now = std::chrono::steady_clock::now();
  if (received != t->last_bytes) {
    t->last_bytes = received;
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

}  // namespace

Response http_get(const std::string& url, const std::vector<std::string>& headers,
                  const HttpOptions& options, size_t max_body, const BodySink& sink) {
  static std::once_flag init;
  std::call_once(init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  curl_slist* list = nullptr;
  for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list_owner(list, curl_slist_free_all);

  Response response;
  Transfer t{curl.get(), &response, &sink, max_body};
  t.stall_timeout = std::chrono::seconds(options.stall_timeout_s);
  CURL* c = curl.get();
  const char* protocols = options.allow_http ? "http,https" : "https";
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, protocols);
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, options.follow_redirects ? 1L : 0L);
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
