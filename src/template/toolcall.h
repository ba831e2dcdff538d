// Tool calls in model output: which syntax a model uses (learned from its chat template) and a
// streaming parser that splits generated text into content and completed tool calls.
//
// Where the syntaxes come from: a template shows how an assistant turn with tool calls is written
// back into the prompt, and models emit the same text. Hugging Face Jinja templates are
// recognised by the literal markers they render (the table llama.cpp's common/chat.cpp uses);
// Ollama Go templates by the first literal text inside their `{{ if .ToolCalls }}` block (the
// "tag" Ollama's tools package looks for), with `{` — a bare leading JSON object — when there is
// none.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace corral::tmpl {

enum class ToolCallStyle {
  kNone,            // the template has no tool support: everything is content
  kJson,            // Llama 3.2: output that starts with {"name": .., "parameters": ..} or [..]
  kLlama31,         // kJson plus <|python_tag|> (JSON, name.call(k=v), or raw python code)
  kHermes,          // Qwen 2.5/3, Hermes 2/3: <tool_call>{"name", "arguments"}</tool_call>
  kMistral,         // [TOOL_CALLS][{"name", "arguments", "id"}, ...] or [TOOL_CALLS]name[ARGS]{..}
  kFireFunction,    // functools[{"name", "arguments"}, ...]
  kFunctionaryV31,  // <function=name>{args}</function>, <|python_tag|>code
  kFunctionaryV32,  // name\n{args} after the prompt's >>>, then >>>name\n{args} ...; all\n text
  kCommandR,        // Action: ```json [{"tool_name", "parameters"}, ...] ```
  kCommandR7B,      // <|START_ACTION|>[{"tool_call_id", "tool_name", "parameters"}]<|END_ACTION|>
  kDeepSeekR1,  // <｜tool▁call▁begin｜>function<｜tool▁sep｜>name\n```json\n{args}\n```...
  kTagged,      // an Ollama template's own tag, followed by JSON call objects
};

struct ToolCallFormat {
  ToolCallStyle style = ToolCallStyle::kNone;
  std::string tag;  // kTagged only: the literal text that opens a tool call

  bool supports_tools() const { return style != ToolCallStyle::kNone; }
  bool operator==(const ToolCallFormat&) const = default;
};

// The style's name, for logs and `corral show` ("hermes", "mistral", ...; "none").
std::string_view to_string(ToolCallStyle style);

// Reads a chat template (Jinja or Go, told apart by the presence of `{%`) and returns the
// tool-call syntax its model uses; kNone when the template does not take tools.
ToolCallFormat detect_tool_call_format(std::string_view template_text);

// Names, ids and argument strings are valid UTF-8 (bad bytes replaced), ready to serialize;
// content and error text are the model's bytes as generated.
struct ToolCall {
  std::string name;
  nlohmann::ordered_json arguments = nlohmann::ordered_json::object();
  std::string id;  // as the model wrote it (Mistral, Command R7B); empty otherwise
};

// A tool call the model started but wrote wrongly (malformed JSON, no name, ...). The server
// reports it (an error message, or the raw text as content); the parser just carries on.
struct ToolCallError {
  std::string message;
  std::string text;  // the offending output, as generated
};

struct ToolCallDelta {
  std::string content;  // text to stream to the client as ordinary content
  std::vector<ToolCall> calls;
  std::vector<ToolCallError> errors;

  bool empty() const { return content.empty() && calls.empty() && errors.empty(); }
};

// Splits streamed model output into content and tool calls. push() takes each decoded piece and
// returns what is certain so far: text that could still become a tool-call tag (the tail of a
// chunk that is a prefix of one) is held back until the next piece decides it. finish() flushes
// whatever is held at the end of generation. Whitespace after a call is not content. With
// style kNone every byte passes straight through: a server builds the parser from the detected
// format only when the request offers tools (as Ollama does), so a plain JSON answer from a
// Llama 3.2 model is never taken for a call.
class ToolCallParser {
 public:
  explicit ToolCallParser(ToolCallFormat format);

  ToolCallDelta push(std::string_view text);
  ToolCallDelta finish();

  // Calls completed so far (for numbering: OpenAI's streamed tool_calls carry an index).
  size_t calls_emitted() const { return n_calls_; }

  // What an opener starts; public only so the implementation's tables can name it.
  enum class Body {
    kJsonValues,    // one or more JSON call objects/arrays, then the closer if there is one
    kFunctionName,  // name up to '>', then a JSON arguments object, then the closer
    kRecipient,     // functionary v3.2: name\n then JSON arguments, python code, or all\n text
    kPythonTag,     // JSON call, name.call(k=v, ...), or python code to the end of output
    kDeepSeekCall,  // type<｜tool▁sep｜>name\n```json\n{args}\n``` then the closer
    kMarker,        // a token that only frames calls: dropped
  };
  struct Opener {
    std::string tag;
    Body body;
    std::string closer;         // empty: the body ends where its syntax ends
    bool leading_only = false;  // only where nothing but whitespace and calls came before
    bool keep_tag = false;      // the tag is the body's first character ('{', '[')
  };

 private:
  enum class State { kContent, kBody };

  bool step_content(ToolCallDelta& out, bool at_end);
  bool step_body(ToolCallDelta& out, bool at_end);
  bool step_json_values(ToolCallDelta& out, bool at_end);
  bool step_function_name(ToolCallDelta& out, bool at_end);
  bool step_recipient(ToolCallDelta& out, bool at_end);
  bool step_python_tag(ToolCallDelta& out, bool at_end);
  bool step_deepseek_call(ToolCallDelta& out, bool at_end);
  // Parses a JSON arguments object at the start of buf_ (after `skip` bytes) for a call named
  // name_; false while it is incomplete.
  bool take_arguments(ToolCallDelta& out, size_t skip, bool at_end);
  bool take_closer(bool at_end);
  bool skip_broken(ToolCallDelta& out, std::string message, size_t extent, bool at_end);
  void emit_content(ToolCallDelta& out, std::string_view text);
  void add_call(ToolCallDelta& out, ToolCall call);
  void add_error(ToolCallDelta& out, std::string message, std::string_view text);
  void end_body();
  void run(ToolCallDelta& out, bool at_end);
  const Opener& opener() const { return openers_[opener_]; }

  ToolCallFormat format_;
  std::vector<Opener> openers_;
  std::string buf_;
  State state_ = State::kContent;
  size_t opener_ = 0;    // the body being parsed: an index into openers_ (copies stay valid)
  int phase_ = 0;        // progress inside the current body
  std::string name_;     // the call's name once the body has read it
  std::string call_id_;  // and its id, where the syntax carries one outside the JSON
  bool leading_ = true;  // only whitespace and calls so far (leading-JSON calls allowed)
  bool after_call_ = false;
  bool finished_ = false;
  size_t n_calls_ = 0;
};

}  // namespace corral::tmpl
