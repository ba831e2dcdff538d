#include "template/toolcall.h"

#include <algorithm>
#include <utility>

namespace corral::tmpl {
namespace {

using Json = nlohmann::ordered_json;
using Body = ToolCallParser::Body;
using Opener = ToolCallParser::Opener;

constexpr std::string_view kFence = "```json";
constexpr std::string_view kFenceEnd = "```";
constexpr std::string_view kMistralTag = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kMistralCallId = "[CALL_ID]";
// Sub-states shared by the bodies that read a name and then arguments.
constexpr int kPhaseArguments = 20;
constexpr int kPhaseClosing = 100;
// Longest name (or type) read before the text that ends it; past that the call is malformed.
constexpr size_t kMaxName = 256;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_ident(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool is_blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return is_space(c); });
}

// Characters that may stand outside strings in JSON text (literals, numbers, punctuation). Any
// other one ('<', '`', '(' ...) means the text is not JSON, whatever follows: a call whose JSON is
// cut short by its closing tag is reported at once instead of swallowing the rest of the output.
bool json_bare_char(char c) {
  return is_space(c) || is_ident(c) || c == ',' || c == ':' || c == '-' || c == '+' || c == '.';
}

enum class Scan { kComplete, kIncomplete, kInvalid };
struct ScanResult {
  Scan status;
  size_t size;  // complete: the value's length; invalid: where it went wrong
};

// Finds the end of the JSON object or array at the start of s by bracket matching (strings and
// escapes respected). Only completeness is decided here; the JSON parser judges the text.
ScanResult scan_json(std::string_view s) {
  std::string open;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '{':
      case '[':
        open.push_back(c);
        break;
      case '}':
      case ']':
        if (open.empty() || open.back() != (c == '}' ? '{' : '[')) return {Scan::kInvalid, i + 1};
        open.pop_back();
        if (open.empty()) return {Scan::kComplete, i + 1};
        break;
      default:
        if (!json_bare_char(c)) return {Scan::kInvalid, i};
    }
  }
  return {Scan::kIncomplete, s.size()};
}

// Whitespace, separators between calls, and ```json fences around them. Returns how many bytes
// at the start of s are such filler; need_more is set when s ends inside what may be a fence.
size_t filler(std::string_view s, bool separators, bool at_end, bool& need_more) {
  need_more = false;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (is_space(c) || (separators && (c == ',' || c == ';'))) {
      ++i;
      continue;
    }
    if (c != '`') break;
    const std::string_view rest = s.substr(i);
    if (rest.starts_with(kFence)) {
      i += kFence.size();
    } else if (!at_end && rest.size() < kFence.size() && kFence.starts_with(rest)) {
      need_more = true;
      break;
    } else if (rest.starts_with(kFenceEnd)) {
      i += kFenceEnd.size();
    } else {
      break;
    }
  }
  return i;
}

// Text cut from the output (names, python code, keyword arguments) as valid UTF-8: a JSON
// serializer throws on anything else. Invalid bytes become U+FFFD.
std::string clean_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size() && !(n == 2 && b < 0xC2);
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n >= 3) {
      const auto b1 = static_cast<unsigned char>(s[i + 1]);
      // Overlong forms, UTF-16 surrogates and code points past U+10FFFF.
      ok = !(b == 0xE0 && b1 < 0xA0) && !(b == 0xED && b1 >= 0xA0) && !(b == 0xF0 && b1 < 0x90) &&
           !(b == 0xF4 && b1 >= 0x90) && b <= 0xF4;
    }
    if (ok) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

void clean_strings(Json& v) {
  if (v.is_string()) {
    v = clean_utf8(v.get_ref<const std::string&>());
  } else if (v.is_structured()) {
    for (Json& e : v) clean_strings(e);
  }
}

// JSON as models write it: control characters inside strings (a raw newline in generated code)
// are invalid JSON but unambiguous, so they are escaped before a second attempt. Discarded when
// the text is not JSON either way.
Json parse_json(std::string_view text) {
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!value.is_discarded()) return value;
  std::string fixed;
  bool in_string = false, escaped = false, changed = false;
  for (const char c : text) {
    if (in_string && !escaped && static_cast<unsigned char>(c) < 0x20) {
      fixed += c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : " ";
      changed = true;
      continue;
    }
    fixed += c;
    if (escaped) {
      escaped = false;
    } else if (in_string && c == '\\') {
      escaped = true;
    } else if (c == '"') {
      in_string = !in_string;
    }
  }
  if (!changed) return value;
  return Json::parse(fixed, nullptr, false);
}

const Json* member(const Json& obj, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    const auto it = obj.find(key);
    if (it != obj.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}

// Arguments as models write them: an object, or a string holding one (OpenAI's wire form).
bool to_arguments(const Json* value, Json& args, std::string& error) {
  if (value == nullptr) {
    args = Json::object();
    return true;
  }
  if (value->is_string()) {
    const std::string& text = value->get_ref<const std::string&>();
    if (trim(text).empty()) {
      args = Json::object();
      return true;
    }
    args = parse_json(text);
    if (args.is_discarded()) {
      error = "arguments are a string that is not valid JSON";
      return false;
    }
  } else {
    args = *value;
  }
  if (!args.is_object()) {
    error = "arguments are not a JSON object";
    return false;
  }
  return true;
}

// One call object in any of the shapes in use: {"name", "arguments"|"parameters"} (Hermes,
// Llama, Mistral), {"tool_name", "parameters"} (Command R), {"function": {"name", "arguments"}}
// (OpenAI), with "id" or "tool_call_id".
bool to_call(const Json& obj, ToolCall& call, std::string& error) {
  if (!obj.is_object()) {
    error = "tool call is not a JSON object";
    return false;
  }
  const Json* fn = member(obj, {"function"});
  const Json& src = fn != nullptr && fn->is_object() ? *fn : obj;
  const Json* name = member(src, {"name", "tool_name"});
  if (name == nullptr || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    error = "tool call has no name";
    return false;
  }
  call.name = name->get<std::string>();
  if (!to_arguments(member(src, {"arguments", "parameters"}), call.arguments, error)) {
    error = "tool call " + call.name + ": " + error;
    return false;
  }
  if (const Json* id = member(obj, {"id", "tool_call_id"})) {
    call.id = id->is_string() ? id->get<std::string>() : id->dump();
  }
  return true;
}

// Whether a leading JSON value is meant as a call: Llama 3.x answers with plain JSON too, and an
// object without a name and arguments is such an answer.
bool looks_like_call(const Json& v) {
  if (v.is_array()) {
    return !v.empty() && std::all_of(v.begin(), v.end(), [](const Json& e) {
      return looks_like_call(e) && e.is_object();
    });
  }
  if (!v.is_object()) return false;
  const Json* fn = member(v, {"function"});
  const Json& src = fn != nullptr && fn->is_object() ? *fn : v;
  const Json* name = member(src, {"name"});
  return name != nullptr && name->is_string() &&
         (src.contains("parameters") || src.contains("arguments"));
}

// Whether the start of a leading JSON value already shows it is not a call: an object whose
// first key is not one a call object starts with, or an array that does not hold objects.
bool starts_unlike_call(std::string_view s) {
  size_t i = 1;
  while (i < s.size() && is_space(s[i])) ++i;
  if (i >= s.size()) return false;
  if (s[0] == '[') {
    if (s[i] != '{') return true;
    return starts_unlike_call(s.substr(i));
  }
  if (s[i] != '"') return true;
  constexpr std::string_view kKeys[] = {"name",       "type",      "function",
                                        "parameters", "arguments", "id"};
  const std::string_view key = s.substr(i + 1, s.find('"', i + 1) - i - 1);
  const bool key_done = s.find('"', i + 1) != std::string_view::npos;
  return std::none_of(std::begin(kKeys), std::end(kKeys),
                      [&](std::string_view k) { return key_done ? k == key : k.starts_with(key); });
}

// name.call(key=value, ...) as Llama 3.1 writes built-in tool calls: values are Python literals
// (quoted strings, numbers, True/False/None) or JSON. s starts after the '('.
ScanResult scan_kwargs(std::string_view s, Json& args) {
  size_t i = 0;
  const auto skip_space = [&] {
    while (i < s.size() && is_space(s[i])) ++i;
  };
  for (;;) {
    skip_space();
    if (i >= s.size()) return {Scan::kIncomplete, i};
    if (s[i] == ')') return {Scan::kComplete, i + 1};
    const size_t key_start = i;
    while (i < s.size() && is_ident(s[i])) ++i;
    if (i >= s.size()) return {Scan::kIncomplete, i};
    if (i == key_start) return {Scan::kInvalid, i};
    const std::string key(s.substr(key_start, i - key_start));
    skip_space();
    if (i >= s.size()) return {Scan::kIncomplete, i};
    if (s[i] != '=') return {Scan::kInvalid, i};
    ++i;
    skip_space();
    if (i >= s.size()) return {Scan::kIncomplete, i};
    const char c = s[i];
    Json value;
    if (c == '"' || c == '\'') {
      std::string text;
      size_t j = i + 1;
      bool closed = false;
      for (; j < s.size(); ++j) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          const char e = s[++j];
          text += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
        } else if (s[j] == c) {
          closed = true;
          break;
        } else if (s[j] == '\\') {
          break;
        } else {
          text += s[j];
        }
      }
      if (!closed) return {Scan::kIncomplete, s.size()};
      value = text;
      i = j + 1;
    } else if (c == '{' || c == '[') {
      const ScanResult r = scan_json(s.substr(i));
      if (r.status != Scan::kComplete) return {r.status, i + r.size};
      value = parse_json(s.substr(i, r.size));
      if (value.is_discarded()) return {Scan::kInvalid, i + r.size};
      i += r.size;
    } else {
      const size_t start = i;
      while (i < s.size() && s[i] != ',' && s[i] != ')' && !is_space(s[i])) ++i;
      if (i >= s.size()) return {Scan::kIncomplete, i};
      const std::string_view token = s.substr(start, i - start);
      if (token == "True") {
        value = true;
      } else if (token == "False") {
        value = false;
      } else if (token == "None") {
        value = nullptr;
      } else {
        value = Json::parse(token, nullptr, false);
        if (value.is_discarded()) value = std::string(token);
      }
    }
    args[key] = std::move(value);
    skip_space();
    if (i >= s.size()) return {Scan::kIncomplete, i};
    if (s[i] == ',') {
      ++i;
    } else if (s[i] == ')') {
      return {Scan::kComplete, i + 1};
    } else {
      return {Scan::kInvalid, i};
    }
  }
}

std::vector<Opener> openers_for(const ToolCallFormat& format) {
  const Opener leading_object{"{", Body::kJsonValues, "", true, true};
  const Opener leading_array{"[", Body::kJsonValues, "", true, true};
  switch (format.style) {
    case ToolCallStyle::kNone:
      return {};
    case ToolCallStyle::kJson:
      return {leading_object, leading_array};
    case ToolCallStyle::kLlama31:
      return {leading_object, leading_array, {"<|python_tag|>", Body::kPythonTag, ""}};
    case ToolCallStyle::kHermes:
      return {{"<tool_call>", Body::kJsonValues, "</tool_call>"}};
    case ToolCallStyle::kMistral:
      return {{std::string(kMistralTag), Body::kJsonValues, ""}};
    case ToolCallStyle::kFireFunction:
      return {{"functools", Body::kJsonValues, ""}};
    case ToolCallStyle::kFunctionaryV31:
      return {{"<function=", Body::kFunctionName, "</function>"},
              {"<|python_tag|>", Body::kPythonTag, ""}};
    case ToolCallStyle::kFunctionaryV32:
      return {{">>>", Body::kRecipient, ""}};
    case ToolCallStyle::kCommandR:
      return {{"Action:", Body::kJsonValues, ""}};
    case ToolCallStyle::kCommandR7B:
      return {{"<|START_ACTION|>", Body::kJsonValues, "<|END_ACTION|>"},
              {"<|START_RESPONSE|>", Body::kMarker, ""},
              {"<|END_RESPONSE|>", Body::kMarker, ""}};
    case ToolCallStyle::kDeepSeekR1:
      return {{"<｜tool▁calls▁begin｜>", Body::kMarker, ""},
              {"<｜tool▁call▁begin｜>", Body::kDeepSeekCall, "<｜tool▁call▁end｜>"},
              {"<｜tool▁calls▁end｜>", Body::kMarker, ""}};
    case ToolCallStyle::kTagged:
      if (format.tag.empty()) return {leading_object, leading_array};
      return {{format.tag, Body::kJsonValues, ""}};
  }
  return {};
}

// Tags that are ordinary words as well: when no JSON follows them they were just text.
bool tag_may_be_text(const Opener& op) {
  return op.tag == "Action:" || op.tag == "functools" ||
         (!op.tag.starts_with('<') && !op.tag.starts_with('['));
}

// --- Detection ---

bool contains(std::string_view s, std::string_view what) {
  return s.find(what) != std::string_view::npos;
}

ToolCallFormat style_from_tag(std::string tag) {
  if (tag.empty() || tag == "{" || tag == "[") return {ToolCallStyle::kJson, ""};
  if (tag.starts_with("<tool_call>")) return {ToolCallStyle::kHermes, ""};
  if (tag.starts_with("[TOOL_CALLS]")) return {ToolCallStyle::kMistral, ""};
  if (tag.starts_with("<|python_tag|>")) return {ToolCallStyle::kLlama31, ""};
  if (tag.starts_with("Action:")) return {ToolCallStyle::kCommandR, ""};
  if (tag.starts_with("functools")) return {ToolCallStyle::kFireFunction, ""};
  if (tag.starts_with("<function=")) return {ToolCallStyle::kFunctionaryV31, ""};
  if (tag.starts_with("<|START_ACTION|>")) return {ToolCallStyle::kCommandR7B, ""};
  if (contains(tag, "tool▁call")) return {ToolCallStyle::kDeepSeekR1, ""};
  // An opening bracket at the end of a tag belongs to the JSON that follows it.
  while (!tag.empty() && (tag.back() == '[' || is_space(tag.back()))) tag.pop_back();
  if (tag.empty()) return {ToolCallStyle::kJson, ""};
  return {ToolCallStyle::kTagged, tag};
}

// Whether word occurs in s on its own, not as part of a longer identifier.
bool has_word(std::string_view s, std::string_view word) {
  for (size_t p = s.find(word); p != std::string_view::npos; p = s.find(word, p + 1)) {
    const size_t e = p + word.size();
    const bool left = p == 0 || !is_ident(word.front()) || !is_ident(s[p - 1]);
    if (left && (e == s.size() || !is_ident(s[e]))) return true;
  }
  return false;
}

bool starts_with_keyword(std::string_view action, std::string_view keyword) {
  return action.starts_with(keyword) && action.size() > keyword.size() &&
         (is_space(action[keyword.size()]) || action[keyword.size()] == '(');
}

// A Go template action's words: the text between {{ and }} without trim markers.
struct GoAction {
  std::string_view words;
  bool trims_after;  // ends with "-}}": the next text loses its leading whitespace
};

GoAction go_action(std::string_view t, size_t open, size_t close) {
  std::string_view a = t.substr(open + 2, close - open - 2);
  const bool trims_after = a.ends_with('-');
  if (a.starts_with('-')) a.remove_prefix(1);
  if (trims_after) a.remove_suffix(1);
  return {trim(a), trims_after};
}

// The first non-blank literal text inside a Go template's `{{ if .ToolCalls }}` block, as Go's
// parser would split it (trim markers applied), looking into nested range/if/with blocks but
// stopping at any other action, as Ollama's tools package does. Empty when there is none.
std::string go_tool_call_text(std::string_view t) {
  size_t pos = std::string_view::npos;
  bool trim_left = false;
  for (size_t open = t.find("{{"); open != std::string_view::npos; open = t.find("{{", open + 2)) {
    const size_t close = t.find("}}", open + 2);
    if (close == std::string_view::npos) return {};
    const GoAction action = go_action(t, open, close);
    std::string_view words = action.words;
    if (starts_with_keyword(words, "else")) words = trim(words.substr(4));
    if ((starts_with_keyword(words, "if") || starts_with_keyword(words, "with")) &&
        has_word(words, ".ToolCalls")) {
      pos = close + 2;
      trim_left = action.trims_after;
      break;
    }
  }
  while (pos < t.size()) {
    if (t.substr(pos).starts_with("{{")) {
      const size_t close = t.find("}}", pos + 2);
      if (close == std::string_view::npos) return {};
      const GoAction action = go_action(t, pos, close);
      const bool opens_block = starts_with_keyword(action.words, "range") ||
                               starts_with_keyword(action.words, "if") ||
                               starts_with_keyword(action.words, "with");
      if (!opens_block) return {};
      trim_left = action.trims_after;
      pos = close + 2;
      continue;
    }
    size_t next = t.find("{{", pos);
    if (next == std::string_view::npos) next = t.size();
    std::string_view text = t.substr(pos, next - pos);
    if (trim_left) {
      while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
    }
    if (t.substr(next).starts_with("{{-")) {
      while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
    }
    if (!trim(text).empty()) return std::string(text);  // blank text nodes are skipped
    pos = next;
    trim_left = false;
  }
  return {};
}

ToolCallFormat detect_go(std::string_view t) {
  if (!has_word(t, ".Tools")) return {};
  std::string text = go_tool_call_text(t);
  // Ollama's tag: the text up to the first '{' (where the call's JSON begins), trimmed.
  std::string tag;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;
    if (text[i] == '{') break;
    tag += text[i];
  }
  return style_from_tag(std::string(trim(tag)));
}

// Hugging Face templates: the markers each family renders (the order matters where a template
// holds several, e.g. Functionary v3.1 also renders <|python_tag|>).
ToolCallFormat detect_jinja(std::string_view t) {
  const auto has = [&](std::string_view what) { return contains(t, what); };
  if (has("<｜tool▁calls▁begin｜>") || has("<｜tool▁call▁begin｜>")) {
    return {ToolCallStyle::kDeepSeekR1, ""};
  }
  if (has("<|START_ACTION|>")) return {ToolCallStyle::kCommandR7B, ""};
  if (has("<tool_call>")) return {ToolCallStyle::kHermes, ""};
  if (has(">>>all")) return {ToolCallStyle::kFunctionaryV32, ""};
  if (has(" functools[")) return {ToolCallStyle::kFireFunction, ""};
  if (has("<|start_header_id|>") && has("<function=")) return {ToolCallStyle::kFunctionaryV31, ""};
  if (has("[TOOL_CALLS]")) return {ToolCallStyle::kMistral, ""};
  if (has("<|start_header_id|>ipython<|end_header_id|>")) {
    return {has("<|python_tag|>") ? ToolCallStyle::kLlama31 : ToolCallStyle::kJson, ""};
  }
  if (has("<|CHATBOT_TOKEN|>") && has("Action:")) return {ToolCallStyle::kCommandR, ""};
  // A template that takes tools but shows no syntax of its own: Ollama then tries any leading
  // JSON object as a call.
  if (has_word(t, "tools")) return {ToolCallStyle::kJson, ""};
  return {};
}

}  // namespace

std::string_view to_string(ToolCallStyle style) {
  switch (style) {
    case ToolCallStyle::kNone:
      return "none";
    case ToolCallStyle::kJson:
      return "json";
    case ToolCallStyle::kLlama31:
      return "llama3.1";
    case ToolCallStyle::kHermes:
      return "hermes";
    case ToolCallStyle::kMistral:
      return "mistral";
    case ToolCallStyle::kFireFunction:
      return "firefunction";
    case ToolCallStyle::kFunctionaryV31:
      return "functionary-v3.1";
    case ToolCallStyle::kFunctionaryV32:
      return "functionary-v3.2";
    case ToolCallStyle::kCommandR:
      return "command-r";
    case ToolCallStyle::kCommandR7B:
      return "command-r7b";
    case ToolCallStyle::kDeepSeekR1:
      return "deepseek-r1";
    case ToolCallStyle::kTagged:
      return "tagged";
  }
  return "none";
}

ToolCallFormat detect_tool_call_format(std::string_view template_text) {
  if (contains(template_text, "{%")) return detect_jinja(template_text);
  if (contains(template_text, "{{")) return detect_go(template_text);
  return {};
}

// --- Parser ---

ToolCallParser::ToolCallParser(ToolCallFormat format)
    : format_(std::move(format)), openers_(openers_for(format_)) {
  if (format_.style == ToolCallStyle::kFunctionaryV32) {
    // The generation prompt ends in ">>>": the output opens with a recipient line.
    state_ = State::kBody;
    opener_ = 0;
  }
}

ToolCallDelta ToolCallParser::push(std::string_view text) {
  ToolCallDelta out;
  if (finished_) return out;
  if (openers_.empty()) {
    out.content = std::string(text);
    return out;
  }
  buf_.append(text);
  run(out, false);
  return out;
}

ToolCallDelta ToolCallParser::finish() {
  ToolCallDelta out;
  if (finished_) return out;
  run(out, true);
  if (!buf_.empty()) emit_content(out, buf_);
  buf_.clear();
  finished_ = true;
  return out;
}

void ToolCallParser::run(ToolCallDelta& out, bool at_end) {
  for (;;) {
    const bool progressed =
        state_ == State::kContent ? step_content(out, at_end) : step_body(out, at_end);
    if (!progressed) break;
  }
}

void ToolCallParser::emit_content(ToolCallDelta& out, std::string_view text) {
  if (text.empty()) return;
  if (!is_blank(text)) leading_ = false;
  out.content.append(text);
}

void ToolCallParser::add_call(ToolCallDelta& out, ToolCall call) {
  call.name = clean_utf8(call.name);
  call.id = clean_utf8(call.id);
  clean_strings(call.arguments);
  out.calls.push_back(std::move(call));
  ++n_calls_;
  after_call_ = true;
}

void ToolCallParser::add_error(ToolCallDelta& out, std::string message, std::string_view text) {
  out.errors.push_back({std::move(message), std::string(text)});
  after_call_ = true;
}

void ToolCallParser::end_body() {
  state_ = State::kContent;
  phase_ = 0;
  name_.clear();
  call_id_.clear();
}

bool ToolCallParser::step_content(ToolCallDelta& out, bool at_end) {
  if (after_call_) {
    size_t i = 0;
    while (i < buf_.size() && (is_space(buf_[i]) || (leading_ && buf_[i] == ';'))) ++i;
    buf_.erase(0, i);
    if (buf_.empty()) return false;
    after_call_ = false;
  }
  if (leading_) {
    // Hold leading whitespace: it is dropped if a leading JSON call follows.
    const size_t i = buf_.find_first_not_of(" \t\r\n");
    if (i == std::string::npos) {
      if (at_end) {
        emit_content(out, buf_);
        buf_.clear();
      }
      return false;
    }
    for (const Opener& op : openers_) {
      if (op.leading_only && buf_[i] == op.tag.front()) {
        buf_.erase(0, i);
        state_ = State::kBody;
        opener_ = static_cast<size_t>(&op - openers_.data());
        return true;
      }
    }
  }
  size_t best = std::string::npos;
  const Opener* found = nullptr;
  for (const Opener& op : openers_) {
    if (op.leading_only) continue;
    const size_t p = buf_.find(op.tag);
    if (p < best || (p == best && p != std::string::npos && op.tag.size() > found->tag.size())) {
      best = p;
      found = &op;
    }
  }
  if (found != nullptr) {
    emit_content(out, std::string_view(buf_).substr(0, best));
    buf_.erase(0, best + (found->keep_tag ? 0 : found->tag.size()));
    state_ = State::kBody;
    opener_ = static_cast<size_t>(found - openers_.data());
    return true;
  }
  size_t hold = 0;
  if (!at_end) {
    for (const Opener& op : openers_) {
      if (op.leading_only) continue;
      for (size_t k = std::min(op.tag.size() - 1, buf_.size()); k > hold; --k) {
        if (std::string_view(buf_).ends_with(std::string_view(op.tag).substr(0, k))) {
          hold = k;
          break;
        }
      }
    }
  }
  emit_content(out, std::string_view(buf_).substr(0, buf_.size() - hold));
  buf_.erase(0, buf_.size() - hold);
  return false;
}

bool ToolCallParser::step_body(ToolCallDelta& out, bool at_end) {
  switch (opener().body) {
    case Body::kJsonValues:
      return step_json_values(out, at_end);
    case Body::kFunctionName:
      return step_function_name(out, at_end);
    case Body::kRecipient:
      return step_recipient(out, at_end);
    case Body::kPythonTag:
      return step_python_tag(out, at_end);
    case Body::kDeepSeekCall:
      return step_deepseek_call(out, at_end);
    case Body::kMarker:
      end_body();
      return true;
  }
  return false;
}

// Reports a broken call and skips it: up to and including the closer when the syntax has one
// (waiting for it), else the `extent` bytes that were examined.
bool ToolCallParser::skip_broken(ToolCallDelta& out, std::string message, size_t extent,
                                 bool at_end) {
  const std::string& closer = opener().closer;
  size_t end = std::min(extent, buf_.size());
  size_t consumed = end;
  if (!closer.empty()) {
    const size_t p = buf_.find(closer);
    if (p != std::string::npos) {
      end = p;
      consumed = p + closer.size();
    } else if (!at_end) {
      return false;
    } else {
      end = consumed = buf_.size();
    }
  }
  const std::string tag = opener().keep_tag ? std::string() : opener().tag;
  add_error(out, std::move(message), tag + buf_.substr(0, end));
  buf_.erase(0, consumed);
  end_body();
  return true;
}

bool ToolCallParser::step_json_values(ToolCallDelta& out, bool at_end) {
  const Opener& op = opener();
  if (phase_ == kPhaseArguments) return take_arguments(out, 0, at_end);
  bool need_more = false;
  const size_t skip = op.leading_only ? 0 : filler(buf_, true, at_end, need_more);
  if (need_more) return false;
  const std::string_view rest = std::string_view(buf_).substr(skip);
  if (rest.empty()) {
    if (!at_end) return false;
    if (phase_ == 0) {
      add_error(out, "tool call tag " + op.tag + " with no call after it", op.tag + buf_);
    }
    buf_.clear();
    end_body();
    return true;
  }
  if (!op.closer.empty()) {
    if (rest.starts_with(op.closer)) {
      if (phase_ == 0) add_error(out, "empty tool call", op.tag + buf_.substr(0, skip));
      buf_.erase(0, skip + op.closer.size());
      after_call_ = true;
      end_body();
      return true;
    }
    if (!at_end && op.closer.starts_with(rest)) return false;
  }
  if (phase_ > 0 && op.closer.empty() && rest.starts_with(op.tag)) {
    buf_.erase(0, skip);  // the next call's tag: the content state opens it
    end_body();
    return true;
  }
  const char c = rest.front();
  if (op.tag == kMistralTag && is_ident(c)) {
    // Mistral's newer syntax: [TOOL_CALLS]name[CALL_ID]id[ARGS]{arguments}.
    size_t j = 0;
    while (j < rest.size() && (is_ident(rest[j]) || rest[j] == '-' || rest[j] == '.')) ++j;
    const size_t name_end = j;
    std::string_view after = rest.substr(j);
    std::string id;
    if (after.starts_with(kMistralCallId)) {
      size_t k = kMistralCallId.size();
      while (k < after.size() && is_ident(after[k])) ++k;
      id = std::string(after.substr(kMistralCallId.size(), k - kMistralCallId.size()));
      j += k;
      after = rest.substr(j);
    }
    if (!after.starts_with(kMistralArgs)) {
      const bool may_follow = after.empty() || kMistralArgs.starts_with(after) ||
                              (kMistralCallId.starts_with(after) && id.empty());
      if (!at_end && may_follow) return false;
      buf_.erase(0, skip);
      return skip_broken(out, "tool call name is not followed by [ARGS]", j, at_end);
    }
    name_ = std::string(rest.substr(0, name_end));
    call_id_ = id;
    buf_.erase(0, skip + j + kMistralArgs.size());
    phase_ = kPhaseArguments;
    return true;
  }
  if (c != '{' && c != '[') {
    if (phase_ > 0 && op.closer.empty()) {
      // The calls are over; what follows is content.
      buf_.erase(0, skip);
      end_body();
      return true;
    }
    if (phase_ == 0 && op.closer.empty() && tag_may_be_text(op)) {
      emit_content(out, op.tag);
      emit_content(out, std::string_view(buf_).substr(0, skip));
      buf_.erase(0, skip);
      end_body();
      return true;
    }
    // Reported as the tag alone when there is no closer: what follows is content.
    buf_.erase(0, skip);
    return skip_broken(out, "tool call is not JSON", 0, at_end);
  }
  const ScanResult scan = scan_json(rest);
  if (op.leading_only && scan.status == Scan::kIncomplete && starts_unlike_call(rest)) {
    // A JSON answer: the content state streams it now rather than at its end.
    leading_ = false;
    end_body();
    return true;
  }
  Json value;
  if (scan.status == Scan::kIncomplete && !at_end) return false;
  if (scan.status == Scan::kComplete) {
    value = parse_json(rest.substr(0, scan.size));
  }
  const bool valid = scan.status == Scan::kComplete && !value.is_discarded();
  if (op.leading_only && (!valid || !looks_like_call(value))) {
    // A JSON answer (or something that only starts like one), not a call: content.
    leading_ = false;
    end_body();
    return true;
  }
  buf_.erase(0, skip);
  if (!valid) {
    const std::string message =
        scan.status == Scan::kIncomplete ? "unterminated tool call" : "tool call is not valid JSON";
    return skip_broken(out, message, scan.size, at_end);
  }
  const std::string raw = buf_.substr(0, scan.size);
  buf_.erase(0, scan.size);
  const Json* items = &value;
  const Json single = Json::array({value});
  if (!value.is_array()) items = &single;
  for (const Json& item : *items) {
    ToolCall call;
    std::string error;
    if (to_call(item, call, error)) {
      add_call(out, std::move(call));
    } else {
      add_error(out, error, raw);
    }
  }
  if (items->empty()) after_call_ = true;
  phase_ = 1;
  return true;
}

bool ToolCallParser::take_arguments(ToolCallDelta& out, size_t skip, bool at_end) {
  bool need_more = false;
  skip += filler(std::string_view(buf_).substr(skip), false, at_end, need_more);
  if (need_more) return false;
  const std::string_view rest = std::string_view(buf_).substr(skip);
  if (rest.empty() && !at_end) return false;
  if (rest.empty() || rest.front() != '{') {
    buf_.erase(0, skip);
    return skip_broken(out, "arguments of " + name_ + " are not a JSON object", 0, at_end);
  }
  const ScanResult scan = scan_json(rest);
  if (scan.status == Scan::kIncomplete && !at_end) return false;
  buf_.erase(0, skip);
  Json value;
  if (scan.status == Scan::kComplete) value = parse_json(buf_.substr(0, scan.size));
  if (scan.status != Scan::kComplete || value.is_discarded()) {
    return skip_broken(out, "arguments of " + name_ + " are not valid JSON", scan.size, at_end);
  }
  buf_.erase(0, scan.size);
  add_call(out, {name_, std::move(value), call_id_});
  phase_ = kPhaseClosing;
  return true;
}

// After a call's arguments: an optional closing fence, then the closer (tolerated when missing).
bool ToolCallParser::take_closer(bool at_end) {
  bool need_more = false;
  const size_t skip = filler(buf_, false, at_end, need_more);
  if (need_more) return false;
  const std::string_view rest = std::string_view(buf_).substr(skip);
  const std::string& closer = opener().closer;
  if (!closer.empty()) {
    if (rest.starts_with(closer)) {
      buf_.erase(0, skip + closer.size());
    } else if (!at_end && closer.starts_with(rest)) {
      return false;
    }
  }
  end_body();
  return true;
}

bool ToolCallParser::step_function_name(ToolCallDelta& out, bool at_end) {
  if (phase_ == kPhaseClosing) return take_closer(at_end);
  if (phase_ == 1) return take_arguments(out, 0, at_end);
  const size_t gt = buf_.find('>');
  if (gt == std::string::npos || gt > kMaxName) {
    if (!at_end && buf_.size() <= kMaxName) return false;
    return skip_broken(out, "tool call name is not closed by '>'", 0, at_end);
  }
  name_ = std::string(trim(std::string_view(buf_).substr(0, gt)));
  buf_.erase(0, gt + 1);
  phase_ = 1;
  return true;
}

bool ToolCallParser::step_recipient(ToolCallDelta& out, bool at_end) {
  if (phase_ == kPhaseClosing) {
    end_body();
    return true;
  }
  if (phase_ == 0) {
    const size_t nl = buf_.find('\n');
    const std::string_view head = std::string_view(buf_).substr(0, nl);
    const bool plausible = head.size() <= 64 && std::all_of(head.begin(), head.end(), [](char c) {
                             return is_ident(c) || c == '-' || c == '.';
                           });
    if (!plausible || (nl == std::string::npos && at_end) || (nl == 0)) {
      end_body();  // not a recipient line: plain text
      return true;
    }
    if (nl == std::string::npos) return false;
    name_ = std::string(head);
    buf_.erase(0, nl + 1);
    if (name_ == "all") {
      end_body();
      return true;
    }
    phase_ = 1;
    return true;
  }
  if (phase_ == 1) {
    const size_t i = buf_.find_first_not_of(" \t\r\n");
    if (i == std::string::npos && !at_end) return false;
    if (i != std::string::npos && buf_[i] == '{') return take_arguments(out, 0, at_end);
    if (name_ != "python") {
      const size_t next = buf_.find(">>>");
      if (next == std::string::npos && !at_end) return false;
      return skip_broken(out, "arguments of " + name_ + " are not a JSON object",
                         next == std::string::npos ? buf_.size() : next, at_end);
    }
    phase_ = 2;
  }
  // Python code runs to the next recipient or the end of the output.
  const size_t next = buf_.find(">>>");
  if (next == std::string::npos && !at_end) return false;
  const size_t n = next == std::string::npos ? buf_.size() : next;
  add_call(out, {name_, Json{{"code", buf_.substr(0, n)}}, ""});
  buf_.erase(0, n);
  end_body();
  return true;
}

bool ToolCallParser::step_python_tag(ToolCallDelta& out, bool at_end) {
  if (phase_ == 0) {
    const size_t i = buf_.find_first_not_of(" \t\r\n");
    if (i == std::string::npos) {
      if (!at_end) return false;
      buf_.clear();
      add_error(out, "empty <|python_tag|> call", opener().tag);
      end_body();
      return true;
    }
    if (buf_[i] == '{') {
      const ScanResult scan = scan_json(std::string_view(buf_).substr(i));
      if (scan.status == Scan::kIncomplete && !at_end) return false;
      Json value;
      if (scan.status == Scan::kComplete) {
        value = parse_json(buf_.substr(i, scan.size));
      }
      ToolCall call;
      std::string error = "tool call is not valid JSON";
      if (!value.is_discarded() && scan.status == Scan::kComplete && to_call(value, call, error)) {
        add_call(out, std::move(call));
      } else {
        add_error(out, error, opener().tag + buf_.substr(0, i + scan.size));
      }
      buf_.erase(0, i + scan.size);
      end_body();
      return true;
    }
    size_t j = i;
    while (j < buf_.size() && is_ident(buf_[j])) ++j;
    const std::string_view after = std::string_view(buf_).substr(j);
    constexpr std::string_view kCall = ".call(";
    if (j > i && after.starts_with(kCall)) {
      name_ = buf_.substr(i, j - i);
      buf_.erase(0, j + kCall.size());
      phase_ = 1;
      return true;
    }
    if (!at_end && (after.empty() || (j > i && kCall.starts_with(after)))) return false;
    phase_ = 2;
  }
  if (phase_ == 1) {
    Json args = Json::object();
    const ScanResult scan = scan_kwargs(buf_, args);
    if (scan.status == Scan::kIncomplete && !at_end) return false;
    if (scan.status == Scan::kComplete) {
      add_call(out, {name_, std::move(args), ""});
      buf_.erase(0, scan.size);
    } else {
      const size_t n = std::min(buf_.size(), scan.size + 1);
      add_error(out, "built-in tool call " + name_ + " is malformed",
                opener().tag + name_ + ".call(" + buf_.substr(0, n));
      buf_.erase(0, n);
    }
    end_body();
    return true;
  }
  // Anything else after the tag is code for the python tool; it ends with the output.
  if (!at_end) return false;
  add_call(out, {"python", Json{{"code", std::string(trim(buf_))}}, ""});
  buf_.clear();
  end_body();
  return true;
}

bool ToolCallParser::step_deepseek_call(ToolCallDelta& out, bool at_end) {
  constexpr std::string_view kSep = "<｜tool▁sep｜>";
  if (phase_ == kPhaseClosing) return take_closer(at_end);
  if (phase_ == 0) {
    const size_t sep = buf_.find(kSep);
    if (sep == std::string::npos || sep > kMaxName) {
      if (!at_end && buf_.size() <= kMaxName + kSep.size()) return false;
      return skip_broken(out, "tool call without <｜tool▁sep｜>", 0, at_end);
    }
    buf_.erase(0, sep + kSep.size());
    phase_ = 1;
  }
  if (phase_ == 1) {
    const size_t nl = buf_.find('\n');
    if (nl == std::string::npos || nl > kMaxName) {
      if (!at_end && buf_.size() <= kMaxName) return false;
      return skip_broken(out, "tool call name is not followed by a newline", 0, at_end);
    }
    name_ = std::string(trim(std::string_view(buf_).substr(0, nl)));
    buf_.erase(0, nl + 1);
    phase_ = 2;
  }
  return take_arguments(out, 0, at_end);
}

}  // namespace corral::tmpl
