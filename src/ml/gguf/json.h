// A GGUF metadata value as JSON (numbers, bools, strings, arrays), for `corral debug gguf --json`
// and the server's /api/show model_info.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <limits>

#include "ml/gguf/reader.h"

namespace corral::ml::gguf {

// Arrays keep their first `max_items` items (all by default), recursively.
nlohmann::ordered_json to_json(const Value& v,
                               size_t max_items = std::numeric_limits<size_t>::max());

}  // namespace corral::ml::gguf
