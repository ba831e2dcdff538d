// Who may talk to `corral serve`: the listen address (CORRAL_HOST), the Host-header allow-list
// that stops DNS-rebinding pages from reaching a loopback server, the CORS origins (Ollama's
// defaults plus CORRAL_ORIGINS) and the optional API key. Pure functions, so that every rule is
// tested without a socket (tests/server/access_test.cc).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace corral::server {

struct ListenAddress {
  std::string host = "127.0.0.1";
  int port = 11434;
};

// CORRAL_HOST as Ollama reads OLLAMA_HOST: "host:port", "host", ":port", "[::1]:port",
// "http://host:port" (a scheme without a port means 80 / 443), a trailing path ignored. An empty
// host means loopback (not every interface: listening beyond this machine must be asked for by
// naming 0.0.0.0). Throws std::invalid_argument naming the value for a bad port.
ListenAddress parse_listen_address(std::string_view value);

// The host part of a Host header ("localhost:11434" -> "localhost", "[::1]:80" -> "::1"),
// lowercased.
std::string host_header_name(std::string_view host_header);

// Whether a listen address reaches this machine only: "localhost" or a loopback IP (127/8, ::1).
// Not 0.0.0.0 or ::, which listen on every interface.
bool is_loopback_address(std::string_view host);

// Ollama's allowed-hosts rule for a server bound to loopback: the Host header must name this
// machine: localhost, *.localhost, *.local, *.internal, a loopback, private or unspecified IP,
// this machine's hostname, or `bound_host` (the host CORRAL_HOST named). An empty or missing Host
// header (HTTP/1.0) is allowed. A server bound beyond loopback answers every Host.
bool host_allowed(std::string_view host_header, std::string_view bound_host,
                  std::string_view machine_hostname = {});

// Ollama's default CORS origins (localhost, 127.0.0.1 and 0.0.0.0 over http and https with any
// port; app://, file://, tauri://, vscode-webview://, vscode-file:// and the browser-extension
// schemes) after the extra patterns of CORRAL_ORIGINS (comma-separated; `*` matches anything).
std::vector<std::string> allowed_origins(std::string_view corral_origins);

// Whether `origin` matches one of `patterns` (case-insensitive; each `*` matches any run of
// characters; a pattern "*" alone allows every origin).
bool origin_allowed(std::string_view origin, const std::vector<std::string>& patterns);

// Whether an Authorization header carries `Bearer <api_key>` (compared in constant time).
bool bearer_matches(std::string_view authorization, std::string_view api_key);

}  // namespace corral::server
