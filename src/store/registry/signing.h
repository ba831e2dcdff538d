// Ollama's request signing: an ed25519 key kept in OpenSSH's private key format
// (~/.corral/id_ed25519, generated on first use, with id_ed25519.pub beside it in authorized_keys
// format, so the key can be registered on ollama.com as Ollama's ~/.ollama/id_ed25519 is), and the
// signed token request of Ollama's server/auth.go: GET <realm>?nonce=&scope=&service=&ts= with
//   Authorization: <base64 of the public key's SSH wire form>:<base64 of the ed25519 signature>
// over "GET,<that URL>,<base64 of the hex sha256 of the empty body>".
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace corral::store::registry {

struct SigningKey {
  std::array<uint8_t, 32> seed{};  // the ed25519 private key (RFC 8032's 32-byte secret)
  std::array<uint8_t, 32> public_key{};
  std::string comment;

  static SigningKey generate(std::string comment);
  static SigningKey from_seed(const std::array<uint8_t, 32>& seed, std::string comment);

  // The public key's SSH wire form (string "ssh-ed25519", string key), base64: the middle field
  // of an authorized_keys line and the first half of Ollama's Authorization header.
  std::string public_base64() const;
  // "ssh-ed25519 AAAA... comment"
  std::string authorized_key() const;
  // The whole "-----BEGIN OPENSSH PRIVATE KEY-----" file text (openssh-key-v1, unencrypted).
  std::string openssh_private_key() const;
  // The 64-byte ed25519 signature of `message` (deterministic, as RFC 8032 defines it).
  std::string sign(std::string_view message) const;
};

// Parses an OpenSSH private key file's text (ours or ssh-keygen's). A std::runtime_error naming
// `source` says what is wrong: not an OpenSSH key, an encrypted key, not ed25519, truncated.
SigningKey parse_openssh_private_key(std::string_view text, const std::string& source);

// Reads the key at `path`, or, when there is no file, generates one and writes it with mode 0600
// (and the .pub beside it): written to a temporary file and linked into place, so a reader never
// sees half a key and two processes creating it at once end up using the same key.
SigningKey load_or_create_key(const std::filesystem::path& path);

// ~/.corral/id_ed25519; empty without HOME.
std::filesystem::path default_key_path();

// Go's url.QueryEscape: everything but letters, digits and "-_.~" as %XX, a space as '+'.
std::string query_escape(std::string_view text);

// The token request URL as Ollama builds it: the realm's own query parameters plus service, one
// scope per space-separated scope, ts and nonce, sorted by key (Go's url.Values.Encode).
std::string token_request_url(const std::string& realm, const std::string& service,
                              const std::string& scope, int64_t ts, const std::string& nonce);

// "GET,<url>,<base64 of hex sha256 of nothing>": what Ollama signs for a token request.
std::string token_request_message(const std::string& url);

// The Authorization header's value for a signed request: "<public_base64>:<base64 signature>".
std::string signed_authorization(const SigningKey& key, std::string_view message);

// 16 random bytes, base64url without padding (Ollama's auth.NewNonce).
std::string new_nonce();

}  // namespace corral::store::registry
