// `corral run` through a server says when the server lowered the model's context to fit its
// memory, in one line on stderr as when it runs the model itself (runner::admit_in_process): the
// server's scheduler decides, and /api/ps shows the context it gave.
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "cli/client.h"

namespace corral::cli {

// The line to print when /api/ps (`ps`) shows `model` loaded with less context than was asked:
// the request's num_ctx (`options`), else the model's PARAMETER num_ctx (its /api/show answer,
// `show`), capped at the context it was trained for. nullopt when it got all that, when nothing
// was asked (the server's own default is not known here), or when it is no longer loaded.
std::optional<std::string> lowered_context_note(const std::string& model,
                                                const nlohmann::json& show,
                                                const nlohmann::json& options,
                                                const nlohmann::json& ps);

// lowered_context_note() with the server's /api/ps. A failing /api/ps gives nullopt: the note is
// a courtesy, the reply has already been given.
std::optional<std::string> lowered_context_note(Client& client, const std::string& model,
                                                const nlohmann::json& show,
                                                const nlohmann::json& options);

}  // namespace corral::cli
