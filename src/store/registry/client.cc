#include "store/registry/client.h"

#include <curl/curl.h>

#include <strings.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "store/registry/credentials.h"
#include "store/store.h"

namespace corral::store::registry {
namespace {

constexpr size_t kMaxManifestBytes = 4 << 20;
constexpr size_t kMaxTokenBytes = 1 << 20;
constexpr size_t kMaxErrorBytes = 64 << 10;
const char* const kAcceptManifest = "Accept: application/vnd.docker.distribution.manifest.v2+json";

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

// "host[:port]" of "scheme://[user@]host[:port]/path?query".
std::string url_host(const std::string& url) {
  const size_t scheme = url.find("://");
  const size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t end = std::min(url.find_first_of("/?#", start), url.size());
  std::string host = url.substr(start, end - start);
  if (const size_t at = host.rfind('@'); at != std::string::npos) host.erase(0, at + 1);
  return host;
}

bool iequals(const std::string& a, const std::string& b) {
  return a.size() == b.size() && strncasecmp(a.c_str(), b.c_str(), a.size()) == 0;
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
  host_ = url_host(repo_url_);
}

std::string Client::authorization() const {
  std::lock_guard lock(mutex_);
  return authorization_;
}

const SigningKey& Client::signing_key() {
  std::lock_guard lock(key_mutex_);
  if (!key_) key_ = load_or_create_key(options_.key_file);
  return *key_;
}

void Client::fetch_token(const BearerChallenge& ch) {
  const std::string url = token_request_url(ch.realm, ch.service, ch.scope,
                                            static_cast<int64_t>(std::time(nullptr)), new_nonce());
  std::vector<std::string> headers = {"Accept: application/json"};
  std::string how = "sent anonymously";
  // Docker Hub and GHCR take a password at their token endpoint; Ollama's registry takes a
  // signed request, and Ollama sends one only to the registry's own host (server/auth.go).
  if (const auto creds = find_credentials(options_.credential_files, host_)) {
    headers.push_back("Authorization: " + creds->basic_authorization());
    how = "sent with the password of user '" + creds->user + "' from " + creds->source.string();
  } else if (!options_.key_file.empty() && iequals(url_host(ch.realm), host_)) {
    const SigningKey& key = signing_key();
    headers.push_back("Authorization: " + signed_authorization(key, token_request_message(url)));
    how = "signed with the key " + options_.key_file.string() + " (if the registry needs to know " +
          "it, add the public key in " + options_.key_file.string() +
          ".pub to your account there, as on ollama.com/settings/keys)";
  }
  const Response r = http_get(url, headers, options_.http, kMaxTokenBytes);
  if (r.status != 200) {
    const std::string status = r.status == 401   ? "401 Unauthorized"
                               : r.status == 403 ? "403 Forbidden"
                                                 : std::to_string(r.status);
    throw std::runtime_error(ch.realm + ": the token server refused a token for " + repo_url_ +
                             " (" + status + ": " + error_text(r) + "); the request was " + how);
  }
  std::string token;
  try {
    const auto j = nlohmann::json::parse(r.body);
    token = j.value("token", j.value("access_token", ""));
  } catch (const std::exception&) {
  }
  if (token.empty()) {
    throw std::runtime_error(ch.realm + ": no token in the answer (expected JSON {\"token\"})");
  }
  std::lock_guard lock(mutex_);
  authorization_ = "Authorization: Bearer " + token;
  auth_used_ = "the token from " + ch.realm;
}

bool Client::authenticate(const Response& unauthorized) {
  const auto it = unauthorized.headers.find("www-authenticate");
  const std::string challenge = it == unauthorized.headers.end() ? "" : it->second;
  if (const BearerChallenge ch = parse_bearer_challenge(challenge); !ch.realm.empty()) {
    fetch_token(ch);
    return true;
  }
  if (challenge.size() < 5 || strncasecmp(challenge.c_str(), "basic", 5) != 0) return false;
  const auto creds = find_credentials(options_.credential_files, host_);
  if (!creds) {
    std::string files;
    for (const auto& f : options_.credential_files)
      files += (files.empty() ? "" : " or ") + f.string();
    throw std::runtime_error(
        repo_url_ + ": the registry " + host_ + " asks for a user name and password (" + challenge +
        "); none found for it" + (files.empty() ? "" : " in " + files) +
        " (expected {\"auths\": {\"" + host_ + "\": {\"auth\": \"<base64 of user:password>\"}}})");
  }
  std::lock_guard lock(mutex_);
  authorization_ = "Authorization: " + creds->basic_authorization();
  auth_used_ = "the password of user '" + creds->user + "' from " + creds->source.string();
  return true;
}

Response Client::get(const std::string& path, std::vector<std::string> headers, size_t max_body,
                     const BodySink& sink) {
  const std::string url = repo_url_ + path;
  for (int round = 0;; ++round) {
    std::vector<std::string> h = headers;
    if (const std::string a = authorization(); !a.empty()) h.push_back(a);
    Response r = http_get(url, h, options_.http, std::max(max_body, kMaxErrorBytes), sink);
    if (r.status != 401) return r;
    if (round > 0) {
      std::lock_guard lock(mutex_);
      throw std::runtime_error(url + ": unauthorized: the registry " + host_ + " refused " +
                               auth_used_ + " (401: " + error_text(r) + ")");
    }
    if (!authenticate(r)) return r;
  }
}

std::string Client::blob_location(const std::string& digest) {
  HttpOptions once = options_.http;
  once.follow_redirects = false;
  const std::string url = repo_url_ + "/blobs/" + digest;
  // The first byte: a registry that serves the blob itself answers 206, and the sink then stops
  // the transfer (also of a registry that ignores the Range).
  const BodySink stop = [](const Response&, const char*, size_t) { return false; };
  try {
    for (int round = 0; round < 2; ++round) {
      std::vector<std::string> h = {"Range: bytes=0-0"};
      if (const std::string a = authorization(); !a.empty()) h.push_back(a);
      const Response r = http_get(url, h, once, kMaxErrorBytes, stop);
      if (r.status == 401 && round == 0 && authenticate(r)) continue;
      const auto loc = r.headers.find("location");
      if (r.status < 300 || r.status >= 400 || loc == r.headers.end()) return "";
      std::string target = loc->second;
      if (target.starts_with("/"))
        target = url.substr(0, url.find('/', url.find("://") + 3)) + target;
      return iequals(url_host(target), host_) ? "" : target;
    }
  } catch (const std::exception&) {
  }
  return "";
}

// ---- Requests beyond GET (push) ----------------------------------------------------------------

std::string resolve_location(const std::string& request_url, const std::string& location) {
  if (location.find("://") != std::string::npos) return location;
  const size_t scheme = request_url.find("://");
  const size_t path = request_url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  const std::string origin = request_url.substr(0, path);
  if (location.starts_with("/")) return origin + location;
  // Relative to the request's folder (the query dropped).
  std::string base = request_url.substr(0, request_url.find('?'));
  base = base.substr(0, std::max(base.rfind('/'), origin.size()));
  return base + "/" + location;
}

Response Client::request(const std::string& method, const std::string& target,
                         std::vector<std::string> headers, const RequestBody& body,
                         size_t max_body) {
  const std::string url = target.find("://") != std::string::npos ? target : repo_url_ + target;
  const size_t scheme = repo_url_.find("://");
  const std::string origin = repo_url_.substr(0, repo_url_.find('/', scheme + 3));
  const bool ours = url.starts_with(origin + "/") || url == origin;
  const bool writes = method != "GET" && method != "HEAD";
  std::string answered;  // the last challenge answered
  for (int round = 0;; ++round) {
    std::vector<std::string> h = headers;
    if (const std::string a = authorization(); !a.empty() && ours) h.push_back(a);
    Response r =
        http_request(method, url, h, options_.http, std::max(max_body, kMaxErrorBytes), body);
    if (r.status != 401 || !ours) return r;
    // A token for a pull is challenged again for a push's scope, and answered once more; the
    // same challenge twice is a refusal.
    const std::string challenge = r.headers["www-authenticate"];
    if (round > 2 || (round > 0 && challenge == answered)) {
      std::lock_guard lock(mutex_);
      throw std::runtime_error(url + ": unauthorized: the registry " + host_ + " refused " +
                               auth_used_ + " (401: " + error_text(r) + ")");
    }
    BearerChallenge ch = parse_bearer_challenge(challenge);
    if (!ch.realm.empty() && ch.scope.empty() && writes) {
      ch.scope = "repository:" + name_.ns + "/" + name_.model + ":pull,push";
      fetch_token(ch);
    } else if (!authenticate(r)) {
      return r;
    }
    answered = challenge;
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
