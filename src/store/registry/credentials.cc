#include "store/registry/credentials.h"

#include "store/base64.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "store/registry/signing.h"

namespace corral::store::registry {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxConfigBytes = 1 << 20;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "https://index.docker.io/v1/" -> "index.docker.io"; "Host:5000" -> "host:5000".
std::string key_host(std::string key) {
  if (const size_t scheme = key.find("://"); scheme != std::string::npos) key.erase(0, scheme + 3);
  key.resize(std::min(key.find('/'), key.size()));
  return lower(key);
}

}  // namespace

std::string Credentials::basic_authorization() const {
  return "Basic " + base64_encode(user + ":" + password);
}

std::optional<Credentials> find_credentials(const std::vector<fs::path>& files,
                                            const std::string& host) {
  const std::string want = key_host(host);
  for (const fs::path& file : files) {
    std::error_code ec;
    if (file.empty() || !fs::is_regular_file(file, ec)) continue;
    std::ifstream in(file, std::ios::binary);
    std::string text;
    text.resize(kMaxConfigBytes + 1);
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (!in.eof() && !in) throw std::runtime_error("cannot read " + file.string());
    if (text.size() > kMaxConfigBytes) {
      throw std::runtime_error(file.string() + ": larger than a credentials file (1 MiB at most)");
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
      throw std::runtime_error(file.string() + ": not JSON (" + e.what() +
                               "); expected {\"auths\": {\"HOST\": {\"auth\": \"...\"}}}");
    }
    if (!j.is_object() || !j.contains("auths")) continue;
    if (!j["auths"].is_object())
      throw std::runtime_error(file.string() + ": \"auths\" is not an object");
    for (const auto& [key, entry] : j["auths"].items()) {
      if (key_host(key) != want) continue;
      const std::string where = file.string() + ": the entry for \"" + key + "\"";
      if (!entry.is_object()) throw std::runtime_error(where + " is not an object");
      Credentials c;
      c.source = file;
      if (entry.contains("auth") && entry["auth"].is_string() &&
          !entry["auth"].get<std::string>().empty()) {
        std::string decoded;
        try {
          decoded = base64_decode(entry["auth"].get<std::string>());
        } catch (const std::invalid_argument&) {
          throw std::runtime_error(where + ": \"auth\" is not base64 of user:password");
        }
        const size_t colon = decoded.find(':');
        if (colon == std::string::npos) {
          throw std::runtime_error(where + ": \"auth\" is not base64 of user:password (no ':')");
        }
        c.user = decoded.substr(0, colon);
        c.password = decoded.substr(colon + 1);
      } else if (entry.contains("username") && entry["username"].is_string()) {
        c.user = entry["username"].get<std::string>();
        c.password = entry.value("password", "");
      } else {
        continue;  // e.g. an identitytoken only: nothing we can send
      }
      return c;
    }
  }
  return std::nullopt;
}

std::vector<fs::path> default_credential_files() {
  std::vector<fs::path> files;
  const char* home = std::getenv("HOME");
  if (home && *home) files.push_back(fs::path(home) / ".corral" / "credentials.json");
  if (const char* docker = std::getenv("DOCKER_CONFIG"); docker && *docker) {
    files.push_back(fs::path(docker) / "config.json");
  } else if (home && *home) {
    files.push_back(fs::path(home) / ".docker" / "config.json");
  }
  return files;
}

}  // namespace corral::store::registry
