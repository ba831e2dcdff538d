// Which template formats a model's prompt, and rendering it: a Modelfile TEMPLATE (Ollama's Go
// syntax) wins; otherwise the model's own chat template (tokenizer.chat_template, Jinja) is
// rendered directly, with the special-token variables Hugging Face templates expect taken from
// the model's tokenizer.
#pragma once

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "template/chat.h"
#include "template/limits.h"

namespace corral::ml::gguf {
class Metadata;
}
namespace corral::tokenizer {
struct Vocab;
}

namespace corral::tmpl {
namespace gotmpl {
class Template;
}
namespace jinja {
class Template;
}

enum class Syntax { kGo, kJinja };

// Go templates name data with a leading dot or $ ({{ .Prompt }}, {{ range $i, $m := .Messages }})
// and close blocks with {{ end }}; Jinja uses {% %} statements and bare names.
Syntax detect_syntax(std::string_view text);

struct PromptTemplate {
  Syntax syntax = Syntax::kJinja;
  std::string text;
  std::string source;  // where it came from, for messages: "TEMPLATE", "tokenizer.chat_template"
};

// The TEMPLATE layer when given (Go), else the GGUF's tokenizer.chat_template, else nullopt.
std::optional<PromptTemplate> choose_template(const std::optional<std::string>& modelfile_template,
                                              const ml::gguf::Metadata& metadata);

// bos_token and eos_token as the tokenizer spells them, added to context where not already set
// (Hugging Face passes them from tokenizer_config.json).
void add_special_tokens(const tokenizer::Vocab& vocab, Json& context);

// Renders with the engine the syntax names, within limits. Throws the engine's error (line and
// column).
std::string render_prompt(const PromptTemplate& t, const ChatInput& input,
                          const Limits& limits = {});

// A template parsed once, for rendering several prompts from it (a chat cut to fit the context
// renders a few). Throws the engine's error for a syntax error.
class ParsedPrompt {
 public:
  explicit ParsedPrompt(const PromptTemplate& t);
  std::string render(const ChatInput& input, const Limits& limits = {}) const;

 private:
  std::shared_ptr<const gotmpl::Template> go_;
  std::shared_ptr<const jinja::Template> jinja_;
};

// Whether an error of either engine means that a rendering was stopped by its Limits (too much
// output, work, time or nesting, or cancelled) rather than that the template failed.
bool is_limit_error(const std::exception& e);

}  // namespace corral::tmpl
