// Renders a Hugging Face chat template (the Jinja `chat_template` of tokenizer_config.json or a
// GGUF's tokenizer.chat_template) the way transformers' apply_chat_template does.
#pragma once

#include <ctime>
#include <optional>
#include <string>

#include "template/chat.h"
#include "template/jinja/template.h"

namespace corral::tmpl {

struct HfChatOptions {
  // The clock strftime_now reads (transformers: datetime.now(), local time); unset: now.
  std::optional<std::time_t> now;
  // What the rendering may cost.
  Limits limits;
};

// The template sees `messages`, `tools` and `documents` (None when not given, as transformers
// passes them), `add_generation_prompt`, every variable of input.context (bos_token,
// eos_token, ...), `enable_thinking` when input.think is set (and context lacks it), and the
// functions raise_exception(message) and strftime_now(format).
// Throws jinja::Error for a syntax error, a runtime error or raise_exception, with the template
// line and column.
std::string render_hf_chat(const std::string& template_text, const ChatInput& input,
                           const HfChatOptions& options = {});
// The same with a template parsed once (jinja::Template::parse), for rendering many prompts.
std::string render_hf_chat(const jinja::Template& chat_template, const ChatInput& input,
                           const HfChatOptions& options = {});

}  // namespace corral::tmpl
