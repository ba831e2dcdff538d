// What `corral show` and the server's /api/show both say about a store model: its Modelfile and
// its parameters in Ollama's text layout.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "store/model.h"
#include "store/modelfile.h"

namespace corral::store {

// Ollama's show --parameters: one line per value, the name padded to 30 columns, then the value
// as JSON (a list, such as `stop`, gives one line per item). Each line ends in '\n'.
std::string format_parameters(const nlohmann::ordered_json& params);

// The Modelfile that makes `info` again: FROM the model file's absolute path, and its template,
// system, parameters, messages, licenses and required version.
Modelfile modelfile_of(const ModelInfo& info);

}  // namespace corral::store
