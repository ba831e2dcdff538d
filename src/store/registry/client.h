// A client of one repository on an OCI (Docker v2) registry, as Ollama's registry speaks it:
// GET /v2/<namespace>/<model>/manifests/<tag> and /v2/<namespace>/<model>/blobs/<digest>, with
// an anonymous Bearer token fetched from a 401's WWW-Authenticate challenge.
//
// https unless `insecure` (then plain http, as Ollama's --insecure does): a name never downgrades
// to http by itself, not even on loopback, so what a name means does not depend on where it is
// resolved. CORRAL_REGISTRY_MIRROR ("host[:port]" or "scheme://host[:port]") replaces the default
// registry (registry.ollama.ai) in URLs; the model keeps its name in the store.
#pragma once

#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/names.h"
#include "store/registry/http.h"

namespace corral::store::registry {

struct ClientOptions {
  bool insecure = false;
  std::string mirror;  // CORRAL_REGISTRY_MIRROR
  HttpOptions http;
  int max_attempts = 6;  // per request (a blob part: since its last progress)
  std::chrono::milliseconds first_backoff{500};  // doubled after every failed attempt
  std::chrono::milliseconds max_backoff{30000};
};

// The challenge of a 401: Bearer realm="...",service="...",scope="...". Empty realm: not Bearer.
struct BearerChallenge {
  std::string realm, service, scope;
};
BearerChallenge parse_bearer_challenge(const std::string& header);

class Client {
 public:
  Client(const ModelName& name, ClientOptions options);

  // "https://registry.ollama.ai/v2/library/llama3.2"
  const std::string& repository_url() const { return repo_url_; }
  const ClientOptions& options() const { return options_; }

  // One GET of repository_url() + path (with the token, fetching one on a Bearer challenge).
  Response get(const std::string& path, std::vector<std::string> headers, size_t max_body,
               const BodySink& sink = {});
  // The manifest's JSON text for the name's tag, retried on dropped connections and 5xx (a
  // refused connection fails at once: nothing listens there).
  std::string manifest();
  // Sleeps before retry number `attempt` (1, 2, ...): first_backoff * 2^(attempt-1), capped.
  void backoff(int attempt) const;

 private:
  void fetch_token(const BearerChallenge& challenge);
  std::string token() const;

  ModelName name_;
  ClientOptions options_;
  std::string repo_url_;
  mutable std::mutex mutex_;
  std::string token_;
};

// The registry answered 404 for the manifest: it has no such model or tag.
class ManifestNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Whether a status is worth another try (5xx, 429).
inline bool retryable_status(long status) { return status >= 500 || status == 429; }

}  // namespace corral::store::registry
