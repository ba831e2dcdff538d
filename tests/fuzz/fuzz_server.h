// The server the HTTP fuzzer and the replay of its corpus run: an empty store, a 64 KiB body
// limit, one thread and one slot. Models it is asked to pull (/api/pull, and /api/create FROM a
// name it lacks) come from the default registry, redirected to a loopback port where nothing
// listens: the corpus never reaches registry.ollama.ai.
#pragma once

#include <cstdlib>
#include <filesystem>

#include "server/server.h"

namespace corral::server {

inline ServerOptions fuzz_server_options(const std::filesystem::path& models) {
  setenv("CORRAL_REGISTRY_MIRROR", "http://127.0.0.1:1", 1);
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.models = models;
  o.max_body_bytes = 64 * 1024;
  o.scheduler.n_threads = 1;
  o.scheduler.num_parallel = 1;
  return o;
}

}  // namespace corral::server
