// Go's text/template built-in functions (funcs.go) over template values, for the executor.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "template/gotmpl/value.h"

namespace corral::tmpl::gotmpl {

// Arity of a built-in (max -1: variadic); call only for names where is_builtin is true.
void builtin_arity(std::string_view name, int& min_args, int& max_args);
// Calls a built-in other than and/or (which the executor short-circuits). Throws
// std::runtime_error with Go's message ("index out of range: 5", "incompatible types for
// comparison", ...).
Value call_builtin(std::string_view name, std::span<const Value> args);

// Go's template.HTMLEscapeString, JSEscapeString and url.QueryEscape.
std::string html_escape(std::string_view s);
std::string js_escape(std::string_view s);
std::string url_query_escape(std::string_view s);
// Go's strconv.Quote (the %q of a string).
std::string go_quote(std::string_view s, bool ascii_only = false);

}  // namespace corral::tmpl::gotmpl
