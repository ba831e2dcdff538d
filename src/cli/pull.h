// Pulling a model with `corral pull`'s progress lines, for the commands that pull a model they
// are asked to use and the store lacks (`corral run NAME`).
#pragma once

#include <string>

#include "cli/client.h"

namespace corral::cli {

// Pulls `model` through `client` (POST /api/pull, into the server's store) when one is given,
// else into the local store; Ollama's status lines go to stdout. Throws on failure.
void pull_model(Client* client, const std::string& model, bool insecure);

}  // namespace corral::cli
