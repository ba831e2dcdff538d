// Standard base64 (RFC 4648 §4): image bytes in Ollama's API, keys and signatures of registry
// authentication, user:password in credentials files.
#pragma once

#include <string>
#include <string_view>

namespace corral::store {

// With '=' padding.
std::string base64_encode(std::string_view bytes);
// Padding optional; any other character, or a length no encoding has, is a std::invalid_argument
// that says which.
std::string base64_decode(std::string_view text);

}  // namespace corral::store
