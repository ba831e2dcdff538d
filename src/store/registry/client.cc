#include "store/registry/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/store.h"

namespace corral::store::registry {
namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;
constexpr size_t kMaxTokenBytes = 1 << 20;
constexpr size_t kMaxErrorBytes = 64 << 10;
const char* const kAcceptManifest = "Accept: application/vnd.docker.distribution.manifest.v2+json";

std::string url_escape(const std::string& text) {
  char* e = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

// The registry's {"errors": [{"code", "message"}]}, or the start of a body that is not one.
std::string error_text(const Response& r) {
  try {
    const auto j = nlohmann::json::parse(r.body);
    const auto& e = j.at("errors").at(0);
    return e.value("code", "") + ": " + e.value("message", "");
  } catch (const std::exception&) {
    return r.body.substr(0, 200);
  }
}

}  // namespace

BearerChallenge parse_bearer_challenge(const std::string& header) {
  BearerChallenge c;
  if (header.size() < 7 || strncasecmp(header.c_str(), "bearer ", 7) != 0) return c;
  size_t i = 7;
  while (i < header.size()) {
    while (i < header.size() && (header[i] == ' ' || header[i] == ',')) ++i;
    const size_t eq = header.find('=', i);
    if (eq == std::string::npos) break;
    const std::string key = header.substr(i, eq - i);
    std::string value;
    i = eq + 1;
    if (i < header.size() && header[i] == '"') {
      const size_t end = header.find('"', i + 1);
      value = header.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1);
      i = end == std::string::npos ? header.size() : end + 1;
    } else {
      const size_t end = std::min(header.find(',', i), header.size());
      value = header.substr(i, end - i);
      i = end;
    }
    if (key == "realm") c.realm = value;
    if (key == "service") c.service = value;
    if (key == "scope") c.scope = value;
  }
  return c;
}

Client::Client(const ModelName& name, ClientOptions options)
    : name_(name), options_(std::move(options)) {
  std::string base = name_.host;
  bool explicit_scheme = false;
  if (!options_.mirror.empty() && name_.host == ModelName{}.host) {
    base = options_.mirror;
    while (base.ends_with('/')) base.pop_back();
    explicit_scheme = base.find("://") != std::string::npos;
  }
  if (!explicit_scheme) base = (options_.insecure ? "http://" : "https://") + base;
  // An explicit http:// mirror was asked for by whoever set the variable.
  options_.http.allow_http = options_.insecure || base.starts_with("http://");
  repo_url_ = base + "/v2/" + name_.ns + "/" + name_.model;
}

std::string Client::token() const {
  std::lock_guard lock(mutex_);
  return token_;
}

void Client::fetch_token(const BearerChallenge& ch) {
  std::string url = ch.realm + (ch.realm.find('?') == std::string::npos ? "?" : "&") +
                    "service=" + url_escape(ch.service);
  if (!ch.scope.empty()) url += "&scope=" + url_escape(ch.scope);
  const Response r = http_get(url, {"Accept: application/json"}, options_.http, kMaxTokenBytes);
  if (r.status != 200) {
    throw std::runtime_error(url + ": the token request for " + repo_url_ + " answered " +
                             std::to_string(r.status) + " (" + error_text(r) + ")");
  }
  std::string token;
  try {
    const auto j = nlohmann::json::parse(r.body);
    token = j.value("token", j.value("access_token", ""));
  } catch (const std::exception&) {
  }
  if (token.empty())
    throw std::runtime_error(url + ": no token in the answer (expected JSON {\"token\"})");
  std::lock_guard lock(mutex_);
  token_ = token;
}

Response Client::get(const std::string& path, std::vector<std::string> headers, size_t max_body,
                     const BodySink& sink) {
  const std::string url = repo_url_ + path;
  for (int round = 0;; ++round) {
    std::vector<std::string> h = headers;
    const std::string t = token();
    if (!t.empty()) h.push_back("Authorization: Bearer " + t);
    Response r = http_get(url, h, options_.http, std::max(max_body, kMaxErrorBytes), sink);
    if (r.status != 401 || round > 0) return r;
    const BearerChallenge ch = parse_bearer_challenge(r.headers["www-authenticate"]);
    if (ch.realm.empty()) return r;
    fetch_token(ch);
  }
}

void Client::backoff(int attempt) const {
  auto wait = options_.first_backoff * (1LL << std::min(attempt - 1, 20));
  std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(wait, options_.max_backoff));
}

std::string Client::manifest() {
  const std::string path = "/manifests/" + name_.tag;
  for (int attempt = 1;; ++attempt) {
    try {
      const Response r = get(path, {kAcceptManifest}, kMaxManifestBytes);
      if (r.status == 200) return r.body;
      if (!retryable_status(r.status) || attempt >= options_.max_attempts) {
        const std::string what = r.status == 404
                                     ? "model '" + name_.display() + "' not found"
                                     : "the registry answered " + std::to_string(r.status);
        const std::string message = repo_url_ + path + ": " + what + " (" + error_text(r) +
                                    "; expected a manifest " + kMediaManifest + ")";
        if (r.status == 404) throw ManifestNotFound(message);
        throw std::runtime_error(message);
      }
    } catch (const ConnectError& e) {
      throw std::runtime_error(e.what());
    } catch (const TransportError&) {
      if (attempt >= options_.max_attempts) throw;
    }
    backoff(attempt);
  }
}

}  // namespace corral::store::registry
