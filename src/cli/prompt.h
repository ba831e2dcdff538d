// The conversation `corral run` keeps and the prompt it gives the model for each message: the
// model's SYSTEM and MESSAGEs, the turns of this session, then the new message, rendered through
// the model's template (its TEMPLATE layer, else its own chat template, else the message as it
// is).
#pragma once

#include <string>

#include "parse/thinking.h"
#include "store/model.h"
#include "template/chat.h"
#include "template/prompt.h"

namespace corral::ml::gguf {
class Metadata;
}
namespace corral::tokenizer {
struct Vocab;
}

namespace corral::cli {

class Conversation {
 public:
  Conversation(const store::ModelInfo& model, const ml::gguf::Metadata& metadata,
               const tokenizer::Vocab& vocab);

  // The prompt for `user` after the turns so far (not yet recorded: see add_turn).
  std::string prompt_for(const std::string& user) const;
  // Records a finished exchange, so that the next prompt continues the conversation.
  void add_turn(const std::string& user, const std::string& assistant,
                const std::string& thinking = "");
  // Forgets this session's turns (the model's own MESSAGEs stay).
  void clear() { turns_ = tmpl::Json::array(); }
  // This session's exchanges ({"role", "content", ...}), oldest first.
  const tmpl::Json& turns() const { return turns_; }
  void set_system(std::string system) { system_ = std::move(system); }
  // Ollama's think for the template (.Think/.ThinkLevel, or enable_thinking in Jinja).
  void set_think(const parse::Think& think) { think_ = think; }

  const tmpl::PromptTemplate& chat_template() const { return template_; }

 private:
  tmpl::ChatInput input_for(const std::string& user) const;

  tmpl::PromptTemplate template_;
  std::optional<std::string> system_;
  tmpl::Json model_messages_;
  tmpl::Json turns_ = tmpl::Json::array();
  tmpl::Json context_ = tmpl::Json::object();
  parse::Think think_;
};

}  // namespace corral::cli
