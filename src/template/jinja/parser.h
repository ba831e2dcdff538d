// Jinja2's grammar (the statements and expressions Hugging Face chat templates use), parsed into
// the tree of ast.h. Nesting is bounded so that a hostile template cannot exhaust the stack.
#pragma once

#include <string>

#include "template/jinja/ast.h"

namespace corral::tmpl::jinja {

// Throws jinja::Error (TemplateSyntaxError) with the line and column of the offending token.
Body parse(const std::string& source);

}  // namespace corral::tmpl::jinja
