// Ollama's prompt rendering on the Go template engine (Ollama's template/template.go): the
// functions it adds (json, currentDate, yesterdayDate, toTypeScriptType), the data a template sees
// (.System .Prompt .Response .Suffix .Messages .Tools .Think .ThinkLevel .IsThinkSet), the three
// ways a template is executed (fill-in-the-middle with .Suffix, messages mode for templates that
// mention .Messages, legacy Prompt/Response mode repeated per turn and cut after the last
// .Response), and the detection of a Jinja chat template as one of Ollama's built-ins.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "template/chat.h"
#include "template/gotmpl/template.h"

namespace corral::tmpl {

// Ollama's template.Parse: Go template syntax with Ollama's functions and missingkey=zero; a
// template that mentions neither .Messages nor .Response gets {{ .Response }} appended. Throws
// gotmpl::Error (also "undefined template specified" for a {{template "x"}} without a pipeline,
// which Ollama rejects).
gotmpl::Template parse_ollama(std::string_view text);

// Ollama's Template.Vars: the lower-cased field and variable names the template mentions, sorted.
std::vector<std::string> ollama_vars(const gotmpl::Template& t);

struct OllamaOptions {
  // /api/generate's prompt and suffix: both non-empty selects fill-in-the-middle rendering.
  std::string prompt;
  std::string suffix;
  // What the rendering may cost (legacy templates execute once per turn: all of them together).
  Limits limits;
};

// Renders a prompt exactly as Ollama's Template.Execute does. input.messages are Ollama API
// messages ({"role", "content", "thinking", "images", "tool_calls", "tool_name",
// "tool_call_id"}); tool-call arguments may be an object or a JSON string (OpenAI style).
// input.think / input.think_level map to .Think, .ThinkLevel, .IsThinkSet as Ollama's
// ThinkValue does (think true: level "medium"). Throws gotmpl::Error.
std::string render_ollama(const gotmpl::Template& t, const ChatInput& input,
                          const OllamaOptions& options = {});

// The values Ollama's templates see, for tests and callers with their own data maps.
gotmpl::Value ollama_messages_value(const Json& messages);
gotmpl::Value ollama_tools_value(const Json& tools);

struct BuiltinTemplate {
  std::string name;   // e.g. "chatml"
  std::string jinja;  // the Jinja chat template that stands for it (Ollama's index.json)
};

// The detection table from the text of Ollama's index.json ([{"name", "template"}, ...]), in file
// order. Throws std::runtime_error naming what is malformed.
std::vector<BuiltinTemplate> parse_builtin_index(std::string_view index_json);

// Ollama's template.Named: the built-in whose Jinja template is nearest to jinja by Levenshtein
// distance over code points (the first such entry on ties), if that distance is below 100.
std::optional<std::string> detect_builtin(std::string_view jinja,
                                          std::span<const BuiltinTemplate> table);

// Levenshtein distance over Unicode code points, or limit+1 when it exceeds limit.
size_t levenshtein_distance(std::string_view a, std::string_view b, size_t limit);

}  // namespace corral::tmpl
