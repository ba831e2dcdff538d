// The prompt `corral run` sends for one user message: the model's SYSTEM and MESSAGEs and the
// user's text, assembled through the model's template.
#pragma once

#include <string>

#include "store/model.h"
#include "template/chat.h"

namespace corral::cli {

// The chat for one user turn: the model's system message (if any), its MESSAGEs, then `user`.
tmpl::ChatInput chat_for(const store::ModelInfo& model, const std::string& user);

// The prompt text for `input`. For now the messages' contents are joined plainly, one per line;
// the template engines replace this.
std::string render_prompt(const store::ModelInfo& model, const tmpl::ChatInput& input);

}  // namespace corral::cli
