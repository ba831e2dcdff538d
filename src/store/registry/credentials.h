// User names and passwords for registries, in Docker's config.json format:
//   {"auths": {"registry.example:5000": {"auth": "<base64 of user:password>"}}}
// ("username" and "password" fields are read too). A key may carry a scheme and a path, as
// Docker's own "https://index.docker.io/v1/" does; only its host[:port] is compared. Credential
// helpers (credsStore, credHelpers) are not run.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace corral::store::registry {

struct Credentials {
  std::string user, password;
  std::filesystem::path source;  // the file they came from, for messages

  // "Basic <base64 of user:password>"
  std::string basic_authorization() const;
};

// The credentials for `host` ("host[:port]", compared case-insensitively) from the first file in
// `files` that has an entry for it. A missing file is skipped; an unreadable or malformed one is a
// std::runtime_error naming it.
std::optional<Credentials> find_credentials(const std::vector<std::filesystem::path>& files,
                                            const std::string& host);

// ~/.corral/credentials.json, then $DOCKER_CONFIG/config.json (or ~/.docker/config.json).
std::vector<std::filesystem::path> default_credential_files();

}  // namespace corral::store::registry
