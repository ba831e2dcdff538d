#include "cli/prompt.h"

namespace corral::cli {

tmpl::ChatInput chat_for(const store::ModelInfo& model, const std::string& user) {
  tmpl::ChatInput in;
  const bool messages_have_system =
      !model.messages.empty() && model.messages.front().value("role", "") == "system";
  if (model.system && !messages_have_system) {
    in.messages.push_back({{"role", "system"}, {"content", *model.system}});
  }
  for (const auto& m : model.messages) in.messages.push_back(m);
  in.messages.push_back({{"role", "user"}, {"content", user}});
  return in;
}

std::string render_prompt(const store::ModelInfo& model, const tmpl::ChatInput& input) {
  std::string out;
  for (const auto& m : input.messages) {
    const std::string content = m.value("content", "");
    if (content.empty()) continue;
    if (!out.empty()) out += "\n";
    out += content;
  }
  return out;
}

}  // namespace corral::cli
