#include "template/prompt.h"

#include <regex>

#include "ml/gguf/metadata.h"
#include "template/hf_chat.h"
#include "template/ollama.h"
#include "tokenizer/vocab.h"

namespace corral::tmpl {

namespace {

// Ollama's template for a model that brings none: the prompt as it is.
constexpr const char* kDefaultTemplate = "{{ .Prompt }}";

}  // namespace

Syntax detect_syntax(std::string_view text) {
  // A Go action starts with a field (.X), a variable ($x), a keyword whose Jinja twin would be
  // written {% %}, or a comment {{/*. Jinja's {{ }} holds expressions over bare names only.
  static const std::regex go_action(
      R"(\{\{-?\s*(\.|\$|/\*|(if|range|with|end|else|define|template|block)\b))");
  const std::string s(text);
  if (std::regex_search(s, go_action)) return Syntax::kGo;
  return Syntax::kJinja;
}

std::optional<PromptTemplate> choose_template(const std::optional<std::string>& modelfile_template,
                                              const ml::gguf::Metadata& metadata) {
  if (modelfile_template && !modelfile_template->empty())
    return PromptTemplate{detect_syntax(*modelfile_template), *modelfile_template, "TEMPLATE"};
  if (const auto* v = metadata.find("tokenizer.chat_template"); v && v->is<std::string>()) {
    const auto& text = v->as_string();
    if (!text.empty()) return PromptTemplate{detect_syntax(text), text, "tokenizer.chat_template"};
  }
  return PromptTemplate{Syntax::kGo, kDefaultTemplate, "default"};
}

void add_special_tokens(const tokenizer::Vocab& vocab, Json& context) {
  if (!context.is_object()) context = Json::object();
  auto add = [&](const char* key, tokenizer::TokenId id) {
    if (id == tokenizer::kNoToken || context.contains(key)) return;
    if (static_cast<size_t>(id) < vocab.size()) context[key] = vocab.text(id);
  };
  add("bos_token", vocab.bos);
  add("eos_token", vocab.eos);
  add("unk_token", vocab.unk);
  add("pad_token", vocab.pad);
}

ParsedPrompt::ParsedPrompt(const PromptTemplate& t) {
  if (t.syntax == Syntax::kGo) {
    go_ = std::make_shared<const gotmpl::Template>(parse_ollama(t.text));
  } else {
    jinja_ = std::make_shared<const jinja::Template>(jinja::Template::parse(t.text));
  }
}

std::string ParsedPrompt::render(const ChatInput& input, const Limits& limits) const {
  if (go_) {
    OllamaOptions options;
    options.limits = limits;
    return render_ollama(*go_, input, options);
  }
  HfChatOptions options;
  options.limits = limits;
  return render_hf_chat(*jinja_, input, options);
}

std::string render_prompt(const PromptTemplate& t, const ChatInput& input, const Limits& limits) {
  return ParsedPrompt(t).render(input, limits);
}

bool is_limit_error(const std::exception& e) {
  if (dynamic_cast<const gotmpl::LimitError*>(&e)) return true;
  const auto* jinja_error = dynamic_cast<const jinja::Error*>(&e);
  return jinja_error && jinja_error->is_limit();
}

}  // namespace corral::tmpl
