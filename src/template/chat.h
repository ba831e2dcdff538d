// The input of a chat-template rendering, shared by the Jinja engine (Hugging Face chat templates,
// which see the messages exactly as the caller gave them) and the Go engine (Modelfile TEMPLATEs
// and Ollama's built-ins, which see Ollama's api.Message fields).
#pragma once

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace corral::tmpl {

using Json = nlohmann::ordered_json;

struct ChatInput {
  // [{"role", "content", "thinking"?, "images"?, "tool_calls"?: [{"type"?, "function": {"name",
  // "arguments"}}], "tool_name"?, "tool_call_id"?}], as Ollama's and OpenAI's APIs send them.
  Json messages = Json::array();
  Json tools = nullptr;      // array of {"type": "function", "function": {...}} or null
  Json documents = nullptr;  // RAG documents (Jinja templates see `documents`), or null
  bool add_generation_prompt = true;
  // Extra template variables (Jinja: bos_token, eos_token, date_string, ...).
  Json context = Json::object();
  std::optional<bool> think;  // Ollama's think (unset: .IsThinkSet false)
  std::string think_level;    // "low" | "medium" | "high" when think is a level
};

}  // namespace corral::tmpl
