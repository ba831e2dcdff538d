// A Jinja2 template engine for Hugging Face chat templates: the language subset those templates
// use, rendered with Jinja2's semantics in the environment transformers sets up (sandboxed,
// trim_blocks, lstrip_blocks, loop controls). Rendering matches Jinja2 3.1 byte for byte.
//
//   auto t = jinja::Template::parse("{% for m in messages %}{{ m.role }}{% endfor %}");
//   std::string text = t.render(context);  // context: a dict Value of template variables
#pragma once

#include <memory>
#include <string>

#include "template/jinja/ast.h"
#include "template/jinja/value.h"
#include "template/limits.h"

namespace corral::tmpl::jinja {

class Template {
 public:
  // Throws jinja::Error (kind "TemplateSyntaxError") with the line and column.
  static Template parse(const std::string& source);

  // `context` is a dict of variables (a non-dict is treated as empty). The globals `range`,
  // `dict` and `namespace` are always present; callers add functions such as raise_exception as
  // Value::function entries of the context. Throws jinja::Error with the line and column of the
  // failing node (is_limit() where one of `limits` stopped the rendering).
  std::string render(const Value& context, const Limits& limits = {}) const;

 private:
  std::shared_ptr<const Body> body_;
};

}  // namespace corral::tmpl::jinja
