#include "cli/prompt.h"

#include "ml/gguf/metadata.h"
#include "tokenizer/vocab.h"

namespace corral::cli {

Conversation::Conversation(const store::ModelInfo& model, const ml::gguf::Metadata& metadata,
                           const tokenizer::Vocab& vocab)
    : template_(*tmpl::choose_template(model.template_text, metadata)),
      system_(model.system),
      model_messages_(model.messages.is_array() ? model.messages : tmpl::Json::array()) {
  tmpl::add_special_tokens(vocab, context_);
}

// As Ollama's chat handler: the model's MESSAGEs come first, and its SYSTEM is put in front
// unless the conversation already starts with a system message.
tmpl::ChatInput Conversation::input_for(const std::string& user) const {
  tmpl::ChatInput in;
  in.context = context_;
  in.think = think_.enabled;
  in.think_level = think_.level;
  const bool has_system =
      !model_messages_.empty() && model_messages_.front().value("role", "") == "system";
  if (system_ && !system_->empty() && !has_system)
    in.messages.push_back({{"role", "system"}, {"content", *system_}});
  for (const auto& m : model_messages_) in.messages.push_back(m);
  for (const auto& m : turns_) in.messages.push_back(m);
  in.messages.push_back({{"role", "user"}, {"content", user}});
  return in;
}

std::string Conversation::prompt_for(const std::string& user) const {
  return tmpl::render_prompt(template_, input_for(user));
}

void Conversation::add_turn(const std::string& user, const std::string& assistant,
                            const std::string& thinking) {
  turns_.push_back({{"role", "user"}, {"content", user}});
  tmpl::Json reply = {{"role", "assistant"}, {"content", assistant}};
  // Go templates read .Thinking; Hugging Face templates reasoning_content (as the server passes
  // an API message's thinking).
  if (!thinking.empty()) {
    reply["thinking"] = thinking;
    reply["reasoning_content"] = thinking;
  }
  turns_.push_back(std::move(reply));
}

}  // namespace corral::cli
