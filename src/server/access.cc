#include "server/access.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace corral::server {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits "host:port" / "[v6]:port" as Go's net.SplitHostPort does; false when there is no port.
bool split_host_port(std::string_view s, std::string& host, std::string& port) {
  if (s.starts_with("[")) {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return false;
    }
    host = std::string(s.substr(1, close - 1));
    port = std::string(s.substr(close + 2));
    return true;
  }
  const size_t colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  // A bare IPv6 address ("::1") has colons but no port.
  if (s.substr(0, colon).find(':') != std::string_view::npos) return false;
  host = std::string(s.substr(0, colon));
  port = std::string(s.substr(colon + 1));
  return true;
}

struct Ip {
  bool v6 = false;
  unsigned char b[16] = {};
};

bool parse_ip(std::string_view text, Ip& ip) {
  const std::string s(text);
  if (inet_pton(AF_INET, s.c_str(), ip.b) == 1) return true;
  if (inet_pton(AF_INET6, s.c_str(), ip.b) == 1) {
    ip.v6 = true;
    // An IPv4-mapped address (::ffff:a.b.c.d) is judged as the IPv4 address it carries.
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(ip.b, kMapped, 12) == 0) {
      std::memmove(ip.b, ip.b + 12, 4);
      ip.v6 = false;
    }
    return true;
  }
  return false;
}

bool is_loopback(const Ip& ip) {
  if (!ip.v6) return ip.b[0] == 127;
  for (int i = 0; i < 15; ++i) {
    if (ip.b[i] != 0) return false;
  }
  return ip.b[15] == 1;
}

bool is_unspecified(const Ip& ip) {
  for (int i = 0; i < (ip.v6 ? 16 : 4); ++i) {
    if (ip.b[i] != 0) return false;
  }
  return true;
}

// RFC 1918 and RFC 4193 addresses, as Go's netip.Addr.IsPrivate.
bool is_private(const Ip& ip) {
  if (!ip.v6) {
    return ip.b[0] == 10 || (ip.b[0] == 172 && (ip.b[1] & 0xf0) == 16) ||
           (ip.b[0] == 192 && ip.b[1] == 168);
  }
  return (ip.b[0] & 0xfe) == 0xfc;
}

}  // namespace

ListenAddress parse_listen_address(std::string_view value) {
  std::string_view s = trim(value);
  ListenAddress out;
  std::string default_port = "11434";
  if (const size_t sep = s.find("://"); sep != std::string_view::npos) {
    const std::string scheme = lower(s.substr(0, sep));
    if (scheme == "http") default_port = "80";
    if (scheme == "https") default_port = "443";
    s.remove_prefix(sep + 3);
  }
  if (const size_t slash = s.find('/'); slash != std::string_view::npos) s = s.substr(0, slash);
  std::string host, port;
  if (!split_host_port(s, host, port)) {
    port = default_port;
    host = std::string(s);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
  }
  if (host.empty()) host = "127.0.0.1";
  int n = -1;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || n < 0 || n > 65535) {
    throw std::invalid_argument("CORRAL_HOST=" + std::string(value) + ": the port '" + port +
                                "' is not a number from 0 to 65535");
  }
  out.host = host;
  out.port = n;
  return out;
}

std::string host_header_name(std::string_view host_header) {
  std::string_view s = trim(host_header);
  std::string host, port;
  if (!split_host_port(s, host, port)) {
    host = std::string(s);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    }
  }
  return lower(host);
}

bool is_loopback_address(std::string_view host) {
  if (host == "localhost") return true;
  Ip ip;
  return parse_ip(host, ip) && is_loopback(ip);
}

bool host_allowed(std::string_view host_header, std::string_view bound_host,
                  std::string_view machine_hostname) {
  const std::string host = host_header_name(host_header);
  if (host.empty() || host == "localhost") return true;
  Ip ip;
  if (parse_ip(host, ip)) return is_loopback(ip) || is_unspecified(ip) || is_private(ip);
  if (!bound_host.empty() && host == lower(bound_host)) return true;
  if (!machine_hostname.empty() && host == lower(machine_hostname)) return true;
  for (const char* tld : {".localhost", ".local", ".internal"}) {
    if (host.ends_with(tld)) return true;
  }
  return false;
}

std::vector<std::string> allowed_origins(std::string_view corral_origins) {
  std::vector<std::string> out;
  std::string_view rest = corral_origins;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    if (!item.empty()) out.emplace_back(item);
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  for (const char* host : {"localhost", "127.0.0.1", "0.0.0.0"}) {
    for (const char* scheme : {"http://", "https://"}) {
      out.push_back(std::string(scheme) + host);
      out.push_back(std::string(scheme) + host + ":*");
    }
  }
  for (const char* o : {"app://*", "file://*", "tauri://*", "vscode-webview://*", "vscode-file://*",
                        "chrome-extension://*", "safari-extension://*", "moz-extension://*",
                        "ms-browser-extension://*"}) {
    out.emplace_back(o);
  }
  return out;
}

bool origin_allowed(std::string_view origin, const std::vector<std::string>& patterns) {
  const std::string o = lower(origin);
  for (const std::string& pattern : patterns) {
    const std::string p = lower(pattern);
    // Glob match with backtracking to the last '*'.
    size_t pi = 0, oi = 0, star = std::string::npos, mark = 0;
    while (oi < o.size()) {
      if (pi < p.size() && p[pi] == '*') {
        star = pi++;
        mark = oi;
      } else if (pi < p.size() && p[pi] == o[oi]) {
        ++pi;
        ++oi;
      } else if (star != std::string::npos) {
        pi = star + 1;
        oi = ++mark;
      } else {
        break;
      }
    }
    if (oi < o.size()) continue;
    while (pi < p.size() && p[pi] == '*') ++pi;
    if (pi == p.size()) return true;
  }
  return false;
}

bool bearer_matches(std::string_view authorization, std::string_view api_key) {
  std::string_view a = trim(authorization);
  constexpr std::string_view kBearer = "bearer ";
  if (a.size() < kBearer.size() || lower(a.substr(0, kBearer.size())) != kBearer) return false;
  a = trim(a.substr(kBearer.size()));
  // Constant time in the key's length: every byte is compared whatever the first mismatch.
  unsigned char diff = a.size() == api_key.size() ? 0 : 1;
  for (size_t i = 0; i < api_key.size(); ++i) {
    diff |= static_cast<unsigned char>(api_key[i]) ^
            static_cast<unsigned char>(i < a.size() ? a[i] : 0);
  }
  return diff == 0 && !api_key.empty();
}

}  // namespace corral::server
