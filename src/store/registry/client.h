// A client of one repository on an OCI (Docker v2) registry, as Ollama's registry speaks it:
// GET /v2/<namespace>/<model>/manifests/<tag> and /v2/<namespace>/<model>/blobs/<digest>. A 401
// is answered as its WWW-Authenticate challenge asks: Bearer, a token from the realm (requested
// with Basic credentials when the credentials files have some for the registry, else signed with
// Ollama's ed25519 key when the realm is on the registry's own host[:port], as Ollama does, else
// anonymously); Basic, the credentials for the registry's host.
//
// https unless `insecure` (then plain http, as Ollama's --insecure does): a name never downgrades
// to http by itself, not even on loopback, so what a name means does not depend on where it is
// resolved. CORRAL_REGISTRY_MIRROR ("host[:port]" or "scheme://host[:port]") replaces the default
// registry (registry.ollama.ai) in URLs; the model keeps its name in the store.
#pragma once

#include <chrono>
#include <filesystem>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "store/names.h"
#include "store/registry/http.h"
#include "store/registry/signing.h"

namespace corral::store::registry {

struct ClientOptions {
  bool insecure = false;
  std::string mirror;  // CORRAL_REGISTRY_MIRROR
  HttpOptions http;
  int max_attempts = 6;  // per request (a blob part: since its last progress)
  std::chrono::milliseconds first_backoff{500};  // doubled after every failed attempt
  std::chrono::milliseconds max_backoff{30000};
  // Ollama's signing key (signing.h), read or generated when a token request is to be signed;
  // empty: token requests are not signed.
  std::filesystem::path key_file;
  // Docker config.json-format files with user names and passwords (credentials.h).
  std::vector<std::filesystem::path> credential_files;
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
  // One `method` request to `target`: a path under repository_url() ("/blobs/uploads/") or an
  // absolute URL (an upload's Location). The token goes only to the registry's own origin. A
  // 401's Bearer challenge fetches a token for the scope it names (a push is challenged for
  // "repository:ns/model:pull,push"; with no scope named, a request that sends asks for that) and
  // the request is made again; a second challenge is answered only if it names another scope.
  Response request(const std::string& method, const std::string& target,
                   std::vector<std::string> headers, const RequestBody& body = {},
                   size_t max_body = 0);
  // Where the registry sends a blob's bytes when that is another host (a CDN): the Location of
  // its redirect, which a download then asks directly, without the registry's Authorization, as
  // Ollama does. Empty: the registry serves the bytes itself (or could not be asked; the parts'
  // own requests then meet the problem and retry).
  std::string blob_location(const std::string& digest);
  // The manifest's JSON text for the name's tag, retried on dropped connections and 5xx (a
  // refused connection fails at once: nothing listens there).
  std::string manifest();
  // Sleeps before retry number `attempt` (1, 2, ...): first_backoff * 2^(attempt-1), capped.
  void backoff(int attempt) const;

 private:
  // Answers a 401's challenge (a new Bearer token, or Basic credentials) for the next request;
  // false when the challenge is neither Bearer nor Basic. Throws when it cannot be answered.
  bool authenticate(const Response& unauthorized);
  void fetch_token(const BearerChallenge& challenge);
  // The "Authorization: ..." header line for requests to the registry, or "".
  std::string authorization() const;
  const SigningKey& signing_key();

  ModelName name_;
  ClientOptions options_;
  std::string repo_url_;
  std::string host_;  // the registry's host[:port] as in repo_url_
  mutable std::mutex mutex_;
  std::string authorization_;
  std::string auth_used_;  // what authorization_ came from, for the message of a second 401
  std::mutex key_mutex_;
  std::optional<SigningKey> key_;
};

// The registry answered 404 for the manifest: it has no such model or tag.
class ManifestNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The absolute URL a Location header names, relative to the URL of the request it answered
// (registries may send "/v2/..." or a full URL).
std::string resolve_location(const std::string& request_url, const std::string& location);

// Whether a status is worth another try (5xx, 429).
inline bool retryable_status(long status) { return status >= 500 || status == 429; }

}  // namespace corral::store::registry
