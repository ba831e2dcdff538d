// What a model is, as /api/show answers and `corral show` prints it, with or without a server:
// the route and the local command call the same function (one code path, DESIGN.md §4).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>

#include "ml/gguf/reader.h"
#include "store/model.h"
#include "store/store.h"

namespace corral::server {

// Ollama's /api/show answer for a model of the store (or a GGUF path): license, modelfile,
// parameters, template (the TEMPLATE layer, else the GGUF's chat template), system, details,
// messages, model_info (GGUF metadata; arrays only when verbose), tensors (verbose),
// capabilities, modified_at.
nlohmann::ordered_json show_json(const store::Store& store, const store::ModelInfo& info,
                                 bool verbose);

// Ollama's api.ModelDetails from a model's config blob (empty fields when it has none).
nlohmann::ordered_json details_of(const nlohmann::ordered_json& config);
nlohmann::ordered_json config_of(const store::Store& st, const store::Manifest& m);

// Ollama's capabilities: what the model file and its template can do ("completion" or
// "embedding", "tools", "insert", "vision", "thinking").
nlohmann::ordered_json capabilities_of(const store::ModelInfo& info, const ml::gguf::File& f);

std::chrono::system_clock::time_point to_system(std::filesystem::file_time_type t);

}  // namespace corral::server
