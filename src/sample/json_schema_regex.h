// JSON schema `pattern` -> GBNF: the regular-expression subset schemas use in practice.
#pragma once

#include <string>
#include <string_view>

namespace corral::sample {

// A GBNF expression for the JSON-string content (between the quotes) of strings matching the
// whole of `pattern`: literals, `.`, classes with ranges and negation, \d \w \s and their
// negations, groups (capturing or `(?:`), `|`, `* + ? {m} {m,} {m,n}` (lazy forms match the
// same), `^` and `$` at the ends. A full match also satisfies JSON schema's search semantics.
// Characters that JSON writes escaped are produced by their escape (literals) or left out
// (classes, `.`). Throws std::invalid_argument naming anything else (backreferences,
// lookaround, \b).
std::string regex_to_gbnf(std::string_view pattern);

}  // namespace corral::sample
