// Facts from Ollama's template/template.go and api/types.go (read, not copied): the wrapper types
// templates see (templateMessage, templateTool, templateArgs printing as JSON), collate's merging
// of consecutive same-role messages, Execute's three modes, and deleteNode's cut after .Response.
#include "template/ollama.h"

#include <algorithm>
#include <ctime>
#include <set>

namespace corral::tmpl {

using gotmpl::Value;

namespace {

std::string lower_ascii(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::string str_or_empty(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// The converters below recurse once per level of the request's JSON (tool-call arguments, tool
// schemas), so its nesting is checked first, without recursion.
constexpr int kMaxJsonDepth = 128;

void check_json_depth(const Json& root) {
  std::vector<std::pair<const Json*, int>> stack = {{&root, 0}};
  while (!stack.empty()) {
    const auto [j, depth] = stack.back();
    stack.pop_back();
    if (!j->is_structured()) continue;
    if (depth >= kMaxJsonDepth) {
      throw gotmpl::LimitError("template data nested more than " + std::to_string(kMaxJsonDepth) +
                               " levels deep");
    }
    for (const Json& child : *j) stack.emplace_back(&child, depth + 1);
  }
}

// A JSON value as Go's json.Unmarshal into `any` makes it: numbers become float64, objects
// map[string]interface{} (sorted when ranged, printed or marshalled).
Value any_value(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
    case Json::value_t::discarded:
      return Value::nil();
    case Json::value_t::boolean:
      return Value(j.get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return Value(j.get<double>());
    case Json::value_t::string:
      return Value(j.get<std::string>());
    case Json::value_t::array: {
      Value::List items;
      for (const Json& e : j) items.push_back(any_value(e));
      return Value::list(std::move(items));
    }
    case Json::value_t::object: {
      Value::Map m;
      for (auto it = j.begin(); it != j.end(); ++it) m[it.key()] = any_value(it.value());
      return Value::map(std::move(m));
    }
    case Json::value_t::binary:
      break;
  }
  return Value::nil();
}

std::string any_json(const Json& j) { return gotmpl::marshal_json(any_value(j)); }

bool omit_any(const Json* j) { return !j || j->is_null(); }

const Json* member(const Json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

Value string_list(const Json* j, const std::string& type_name) {
  Value::List items;
  if (j && j->is_array()) {
    for (const Json& e : *j) items.push_back(Value(e.is_string() ? e.get<std::string>() : ""));
  }
  const bool nil_slice = items.empty();
  return Value::list(std::move(items), nil_slice).with_type_name(type_name);
}

std::string string_list_json(const Json* j) {
  std::string out = "[";
  bool first = true;
  if (j && j->is_array()) {
    for (const Json& e : *j) {
      if (!first) out += ',';
      first = false;
      out += gotmpl::json_quote(e.is_string() ? e.get<std::string>() : "");
    }
  }
  return out + "]";
}

// api.ToolProperty, with its JSON (omitempty fields) and its PropertyType's String().
Value tool_property(const Json& j, std::string& json);
std::string to_typescript_type(const Value& prop);

// *api.ToolPropertiesMap: insertion-ordered in JSON; templates cannot index it (Go's struct has
// no exported fields).
Value properties_map(const Json* j, std::string& json) {
  if (!j || !j->is_object()) {
    json = "null";
    return Value::nil();
  }
  json = "{";
  bool first = true;
  for (auto it = j->begin(); it != j->end(); ++it) {
    std::string pj;
    tool_property(it.value(), pj);
    if (!first) json += ',';
    first = false;
    json += gotmpl::json_quote(it.key()) + ":" + pj;
  }
  json += "}";
  return Value::object("*api.ToolPropertiesMap", {}).with_json(json);
}

Value tool_property(const Json& j, std::string& json) {
  json = "{";
  bool first = true;
  auto add = [&](const char* key, const std::string& v) {
    if (!first) json += ',';
    first = false;
    json += gotmpl::json_quote(key) + ":" + v;
  };
  // AnyOf
  Value::List any_of;
  std::string any_of_json = "[";
  if (const Json* a = member(j, "anyOf"); a && a->is_array()) {
    for (const Json& e : *a) {
      std::string ej;
      any_of.push_back(tool_property(e, ej));
      if (any_of_json.size() > 1) any_of_json += ',';
      any_of_json += ej;
    }
  }
  any_of_json += "]";
  if (!any_of.empty()) add("anyOf", any_of_json);
  // Type: a string or a list of strings.
  std::vector<std::string> types;
  if (const Json* t = member(j, "type")) {
    if (t->is_string()) {
      types.push_back(t->get<std::string>());
    } else if (t->is_array()) {
      for (const Json& e : *t) types.push_back(e.is_string() ? e.get<std::string>() : "");
    }
  }
  Value::List type_items;
  for (const std::string& t : types) type_items.push_back(Value(t));
  std::string type_text;
  if (types.size() == 1) {
    type_text = types[0];
  } else if (types.size() > 1) {
    type_text = "[";
    for (size_t i = 0; i < types.size(); ++i) type_text += (i ? " " : "") + types[i];
    type_text += "]";
  }
  Value type_value = Value::list(std::move(type_items), types.empty())
                         .with_type_name("api.PropertyType")
                         .with_text(type_text);
  if (types.size() == 1) {
    add("type", gotmpl::json_quote(types[0]));
  } else if (types.size() > 1) {
    std::string tj = "[";
    for (size_t i = 0; i < types.size(); ++i) tj += (i ? "," : "") + gotmpl::json_quote(types[i]);
    add("type", tj + "]");
  }
  const Json* items = member(j, "items");
  if (!omit_any(items)) add("items", any_json(*items));
  const std::string description = str_or_empty(j, "description");
  if (!description.empty()) add("description", gotmpl::json_quote(description));
  Value::List enum_items;
  if (const Json* e = member(j, "enum"); e && e->is_array()) {
    for (const Json& x : *e) enum_items.push_back(any_value(x));
    if (!e->empty()) add("enum", any_json(*e));
  }
  std::string props_json;
  Value props = properties_map(member(j, "properties"), props_json);
  if (!props.is_nil()) add("properties", props_json);
  const Json* required = member(j, "required");
  if (required && required->is_array() && !required->empty()) {
    add("required", string_list_json(required));
  }
  json += "}";
  const bool no_any_of = any_of.empty();
  const bool no_enum = enum_items.empty();
  const Value prop =
      Value::object("api.ToolProperty", {{"AnyOf", Value::list(std::move(any_of), no_any_of)},
                                         {"Type", type_value},
                                         {"Items", items ? any_value(*items) : Value::nil()},
                                         {"Description", Value(description)},
                                         {"Enum", Value::list(std::move(enum_items), no_enum)},
                                         {"Properties", props},
                                         {"Required", string_list(required, "[]string")}})
          .with_json(json);
  return prop.with_method("ToTypeScriptType", [prop] { return Value(to_typescript_type(prop)); });
}

// templateProperties: map[string]api.ToolProperty, printing as JSON ("{}" when nil).
Value template_properties(const Json* j) {
  if (!j || !j->is_object()) {
    return Value::map({}, true)
        .with_type_name("template.templateProperties")
        .with_text("{}")
        .with_json("null");
  }
  Value::Map m;
  std::map<std::string, std::string> jsons;
  for (auto it = j->begin(); it != j->end(); ++it) {
    std::string pj;
    m[it.key()] = tool_property(it.value(), pj);
    jsons[it.key()] = pj;
  }
  std::string json = "{";
  for (const auto& [k, v] : jsons) {
    if (json.size() > 1) json += ',';
    json += gotmpl::json_quote(k) + ":" + v;
  }
  json += "}";
  return Value::map(std::move(m))
      .with_type_name("template.templateProperties")
      .with_text(json)
      .with_json(json);
}

Value template_tool(const Json& tool, std::string& json) {
  const Json empty = Json::object();
  const Json* fn = member(tool, "function");
  if (!fn || !fn->is_object()) fn = &empty;
  const Json* params = member(*fn, "parameters");
  if (!params || !params->is_object()) params = &empty;

  std::string pj = "{\"type\":" + gotmpl::json_quote(str_or_empty(*params, "type"));
  const Json* defs = member(*params, "$defs");
  if (!omit_any(defs)) pj += ",\"$defs\":" + any_json(*defs);
  const Json* pitems = member(*params, "items");
  if (!omit_any(pitems)) pj += ",\"items\":" + any_json(*pitems);
  const Json* required = member(*params, "required");
  if (required && required->is_array() && !required->empty()) {
    pj += ",\"required\":" + string_list_json(required);
  }
  const Value props = template_properties(member(*params, "properties"));
  pj += ",\"properties\":" + *props.json() + "}";
  const Value parameters = Value::object("template.templateToolFunctionParameters",
                                         {{"Type", Value(str_or_empty(*params, "type"))},
                                          {"Defs", defs ? any_value(*defs) : Value::nil()},
                                          {"Items", pitems ? any_value(*pitems) : Value::nil()},
                                          {"Required", string_list(required, "[]string")},
                                          {"Properties", props}})
                               .with_json(pj);

  const std::string fj =
      "{\"name\":" + gotmpl::json_quote(str_or_empty(*fn, "name")) +
      ",\"description\":" + gotmpl::json_quote(str_or_empty(*fn, "description")) +
      ",\"parameters\":" + pj + "}";
  const Value function = Value::object("template.templateToolFunction",
                                       {{"Name", Value(str_or_empty(*fn, "name"))},
                                        {"Description", Value(str_or_empty(*fn, "description"))},
                                        {"Parameters", parameters}})
                             .with_json(fj);

  const Json* items = member(tool, "items");
  json = "{\"type\":" + gotmpl::json_quote(str_or_empty(tool, "type"));
  if (!omit_any(items)) json += ",\"items\":" + any_json(*items);
  json += ",\"function\":" + fj + "}";
  return Value::object("template.templateTool",
                       {{"Type", Value(str_or_empty(tool, "type"))},
                        {"Items", items ? any_value(*items) : Value::nil()},
                        {"Function", function}})
      .with_text(json)
      .with_json(json);
}

// templateArgs: map[string]any printing as JSON ("{}" when nil).
Value template_args(const Json* args) {
  Json parsed;
  if (args && args->is_string()) {
    parsed = Json::parse(args->get<std::string>(), nullptr, false);
    args = parsed.is_discarded() ? nullptr : &parsed;
  }
  if (!args || !args->is_object()) {
    return Value::map({}, true)
        .with_type_name("template.templateArgs")
        .with_text("{}")
        .with_json("null");
  }
  Value m = any_value(*args);
  const std::string json = gotmpl::marshal_json(m);
  return m.with_type_name("template.templateArgs").with_text(json).with_json(json);
}

struct Message {
  std::string role, content, thinking, tool_name, tool_call_id;
  Json images, tool_calls;
};

std::string content_text(const Json* c) {
  if (!c) return "";
  if (c->is_string()) return c->get<std::string>();
  if (c->is_array()) {
    std::string out;
    for (const Json& part : *c) out += str_or_empty(part, "text");
    return out;
  }
  return "";
}

std::vector<Message> parse_messages(const Json& messages) {
  std::vector<Message> out;
  if (!messages.is_array()) return out;
  for (const Json& m : messages) {
    Message msg;
    msg.role = lower_ascii(str_or_empty(m, "role"));
    msg.content = content_text(member(m, "content"));
    msg.thinking = str_or_empty(m, "thinking");
    msg.tool_name = str_or_empty(m, "tool_name");
    msg.tool_call_id = str_or_empty(m, "tool_call_id");
    if (const Json* i = member(m, "images")) msg.images = *i;
    if (const Json* t = member(m, "tool_calls")) msg.tool_calls = *t;
    out.push_back(std::move(msg));
  }
  return out;
}

// Ollama's collate: all system contents joined by blank lines, and consecutive messages of one
// role (tool results excepted) merged into the first, contents joined by a blank line.
std::string collate(std::vector<Message>& msgs) {
  std::string system;
  bool any_system = false;
  std::vector<Message> out;
  for (Message& m : msgs) {
    if (m.role == "system") {
      if (any_system) system += "\n\n";
      system += m.content;
      any_system = true;
    }
    if (!out.empty() && out.back().role == m.role && m.role != "tool") {
      out.back().content += "\n\n" + m.content;
    } else {
      out.push_back(std::move(m));
    }
  }
  msgs = std::move(out);
  return system;
}

Value message_value(const Message& m) {
  Value::List images;
  if (m.images.is_array()) {
    for (const Json& i : m.images) {
      images.push_back(
          Value(i.is_string() ? i.get<std::string>() : "").with_type_name("api.ImageData"));
    }
  }
  Value::List calls;
  if (m.tool_calls.is_array()) {
    for (const Json& tc : m.tool_calls) {
      const Json empty = Json::object();
      const Json* fn = member(tc, "function");
      if (!fn) fn = &empty;
      const Json* index = member(*fn, "index");
      const int64_t idx = index && index->is_number() ? index->get<int64_t>() : 0;
      const Value function =
          Value::object("template.templateToolCallFunction",
                        {{"Index", Value(idx)},
                         {"Name", Value(str_or_empty(*fn, "name"))},
                         {"Arguments", template_args(member(*fn, "arguments"))}});
      calls.push_back(
          Value::object("template.templateToolCall",
                        {{"ID", Value(str_or_empty(tc, "id"))}, {"Function", function}}));
    }
  }
  const bool no_images = images.empty();
  const bool no_calls = calls.empty();
  return Value::object(
      "*template.templateMessage",
      {{"Role", Value(m.role)},
       {"Content", Value(m.content)},
       {"Thinking", Value(m.thinking)},
       {"Images", Value::list(std::move(images), no_images).with_type_name("[]api.ImageData")},
       {"ToolCalls",
        Value::list(std::move(calls), no_calls).with_type_name("[]template.templateToolCall")},
       {"ToolName", Value(m.tool_name)},
       {"ToolCallID", Value(m.tool_call_id)}});
}

Value messages_value(const std::vector<Message>& msgs) {
  Value::List items;
  for (const Message& m : msgs) items.push_back(message_value(m));
  return Value::list(std::move(items), msgs.empty()).with_type_name("[]*template.templateMessage");
}

std::string date_string(int days_back) {
  std::time_t now = std::time(nullptr) - static_cast<std::time_t>(days_back) * 86400;
  std::tm tm{};
  localtime_r(&now, &tm);
  if (days_back) {
    // AddDate(0, 0, -1): the calendar day before, whatever the DST shift.
    std::time_t today = std::time(nullptr);
    std::tm t{};
    localtime_r(&today, &t);
    t.tm_mday -= days_back;
    t.tm_isdst = -1;
    std::time_t y = std::mktime(&t);
    localtime_r(&y, &tm);
  }
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string ts_type(const std::string& t) {
  if (t == "string") return "string";
  if (t == "number" || t == "integer") return "number";
  if (t == "boolean") return "boolean";
  if (t == "array") return "any[]";
  if (t == "object") return "Record<string, any>";
  if (t == "null") return "null";
  return "any";
}

// api.ToolProperty.ToTypeScriptType.
std::string to_typescript_type(const Value& prop) {
  const Value* any_of = prop.field("AnyOf");
  if (any_of && !any_of->items().empty()) {
    std::string out;
    for (size_t i = 0; i < any_of->items().size(); ++i) {
      if (i) out += " | ";
      out += to_typescript_type(any_of->items()[i]);
    }
    return out;
  }
  const Value* type = prop.field("Type");
  if (!type || type->items().empty()) return "any";
  std::string out;
  for (size_t i = 0; i < type->items().size(); ++i) {
    if (i) out += " | ";
    out += ts_type(type->items()[i].as_string());
  }
  return out;
}

gotmpl::FuncMap ollama_funcs() {
  gotmpl::FuncMap funcs;
  funcs["json"] = {[](std::span<const Value> a) { return Value(gotmpl::marshal_json(a[0])); }, 1,
                   1};
  auto check_strings = [](std::span<const Value> a) {
    for (const Value& v : a) {
      if (v.kind() != gotmpl::Kind::kString) {
        throw std::runtime_error("wrong type for value; expected string; got " + v.type_name());
      }
    }
  };
  funcs["currentDate"] = {[check_strings](std::span<const Value> a) {
                            check_strings(a);
                            return Value(date_string(0));
                          },
                          0, -1};
  funcs["yesterdayDate"] = {[check_strings](std::span<const Value> a) {
                              check_strings(a);
                              return Value(date_string(1));
                            },
                            0, -1};
  funcs["toTypeScriptType"] = {
      [](std::span<const Value> a) {
        if (a[0].kind() == gotmpl::Kind::kObject && a[0].type_name() == "api.ToolProperty") {
          return Value(to_typescript_type(a[0]));
        }
        return Value("any");
      },
      1, 1};
  return funcs;
}

void arg_identifiers(const gotmpl::Arg& a, std::vector<std::string>& out);

bool pipe_identifiers(const gotmpl::Pipe& p, std::vector<std::string>& out) {
  for (const gotmpl::Command& c : p.cmds) {
    for (const gotmpl::Arg& a : c.args) arg_identifiers(a, out);
  }
  return true;
}

void arg_identifiers(const gotmpl::Arg& a, std::vector<std::string>& out) {
  switch (a.kind) {
    case gotmpl::ArgKind::kField:
    case gotmpl::ArgKind::kVariable:
      out.insert(out.end(), a.ident.begin(), a.ident.end());
      break;
    case gotmpl::ArgKind::kPipe:
      pipe_identifiers(*a.pipe, out);
      break;
    default:
      break;
  }
}

void node_identifiers(const std::vector<gotmpl::Node>& list, std::vector<std::string>& out) {
  for (const gotmpl::Node& n : list) {
    switch (n.type) {
      case gotmpl::NodeType::kTemplate:
        if (!n.pipe) throw gotmpl::Error("undefined template specified");
        pipe_identifiers(*n.pipe, out);
        break;
      case gotmpl::NodeType::kAction:
        pipe_identifiers(*n.pipe, out);
        break;
      case gotmpl::NodeType::kIf:
      case gotmpl::NodeType::kRange:
      case gotmpl::NodeType::kWith:
        pipe_identifiers(*n.pipe, out);
        node_identifiers(n.list, out);
        if (n.has_else) node_identifiers(n.else_list, out);
        break;
      default:
        break;
    }
  }
}

// deleteNode of Ollama's legacy mode: everything after the first .Response field (in walk order)
// is removed; a command left without arguments removes its whole pipeline.
class ResponseCutter {
 public:
  void list(std::vector<gotmpl::Node>& nodes) {
    std::vector<gotmpl::Node> kept;
    for (gotmpl::Node& n : nodes) {
      if (node(n)) kept.push_back(std::move(n));
    }
    nodes = std::move(kept);
  }

 private:
  bool cut_ = false;

  bool node(gotmpl::Node& n) {
    if (cut_) return false;
    switch (n.type) {
      case gotmpl::NodeType::kIf:
      case gotmpl::NodeType::kRange:
      case gotmpl::NodeType::kWith:
        list(n.list);
        if (n.has_else) {
          // Ollama's walk type-asserts the deleted else list and panics; fail the same request.
          if (cut_) throw gotmpl::Error("template: cannot cut the template after .Response");
          list(n.else_list);
        }
        return true;
      case gotmpl::NodeType::kAction: {
        n.pipe = pipe(*n.pipe);
        return n.pipe != nullptr;
      }
      default:
        return true;
    }
  }

  std::shared_ptr<gotmpl::Pipe> pipe(const gotmpl::Pipe& p) {
    if (cut_) return nullptr;
    auto out = std::make_shared<gotmpl::Pipe>(p);
    for (gotmpl::Command& c : out->cmds) {
      std::vector<gotmpl::Arg> args;
      for (gotmpl::Arg& a : c.args) {
        if (a.kind == gotmpl::ArgKind::kField &&
            std::find(a.ident.begin(), a.ident.end(), "Response") != a.ident.end()) {
          cut_ = true;
          args.push_back(a);
          continue;
        }
        if (cut_) continue;
        if (a.kind == gotmpl::ArgKind::kPipe) {
          a.pipe = pipe(*a.pipe);
          if (!a.pipe) continue;
        }
        args.push_back(a);
      }
      if (args.empty()) return nullptr;
      c.args = std::move(args);
    }
    return out;
  }
};

}  // namespace

gotmpl::Value ollama_messages_value(const Json& messages) {
  std::vector<Message> msgs = parse_messages(messages);
  collate(msgs);
  return messages_value(msgs);
}

gotmpl::Value ollama_tools_value(const Json& tools) {
  if (!tools.is_array()) {
    return Value::list({}, true)
        .with_type_name("template.templateTools")
        .with_text("null")
        .with_json("null");
  }
  Value::List items;
  std::string json = "[";
  for (const Json& t : tools) {
    std::string tj;
    items.push_back(template_tool(t, tj));
    if (json.size() > 1) json += ',';
    json += tj;
  }
  json += "]";
  return Value::list(std::move(items))
      .with_type_name("template.templateTools")
      .with_text(json)
      .with_json(json);
}

std::vector<std::string> ollama_vars(const gotmpl::Template& t) {
  std::vector<std::string> ids;
  node_identifiers(t.root(), ids);
  for (const auto& [name, body] : t.definitions()) node_identifiers(body, ids);
  std::set<std::string> set;
  for (const std::string& id : ids) set.insert(lower_ascii(id));
  return {set.begin(), set.end()};
}

gotmpl::Template parse_ollama(std::string_view text) {
  gotmpl::Options options;
  options.funcs = ollama_funcs();
  options.missing_key = gotmpl::MissingKey::kZero;
  gotmpl::Template t = gotmpl::Template::parse(text, "", std::move(options));
  const std::vector<std::string> vars = ollama_vars(t);
  const bool has = [&](std::string_view v) {
    return std::find(vars.begin(), vars.end(), v) != vars.end();
  }("messages") || std::find(vars.begin(), vars.end(), "response") != vars.end();
  if (!has) {
    gotmpl::Node response;
    response.type = gotmpl::NodeType::kAction;
    response.pipe = std::make_shared<gotmpl::Pipe>();
    gotmpl::Command c;
    gotmpl::Arg field;
    field.kind = gotmpl::ArgKind::kField;
    field.ident = {"Response"};
    c.args.push_back(field);
    response.pipe->cmds.push_back(std::move(c));
    t.mutable_root().push_back(std::move(response));
  }
  return t;
}

std::string render_ollama(const gotmpl::Template& t, const ChatInput& input,
                          const OllamaOptions& options) {
  check_json_depth(input.messages);
  check_json_depth(input.tools);
  std::vector<Message> msgs = parse_messages(input.messages);
  const std::string all_system = collate(msgs);

  bool think = false;
  std::string think_level;
  bool is_think_set = false;
  if (!input.think_level.empty()) {
    const std::string& l = input.think_level;
    is_think_set = true;
    think = l == "high" || l == "medium" || l == "low" || l == "max";
    think_level = l;
  } else if (input.think.has_value()) {
    is_think_set = true;
    think = *input.think;
    think_level = think ? "medium" : "";
  }
  auto with_think = [&](Value::Map m) {
    m["Think"] = Value(think);
    m["ThinkLevel"] = Value(think_level);
    m["IsThinkSet"] = Value(is_think_set);
    return Value::map(std::move(m));
  };

  if (!options.prompt.empty() && !options.suffix.empty()) {
    return t.execute(with_think({{"Prompt", Value(options.prompt)},
                                 {"Suffix", Value(options.suffix)},
                                 {"Response", Value("")}}),
                     options.limits);
  }
  const std::vector<std::string> vars = ollama_vars(t);
  if (std::find(vars.begin(), vars.end(), "messages") != vars.end()) {
    return t.execute(with_think({{"System", Value(all_system)},
                                 {"Messages", messages_value(msgs)},
                                 {"Tools", ollama_tools_value(input.tools)},
                                 {"Response", Value("")}}),
                     options.limits);
  }

  // Legacy mode: one execution per system/user/assistant turn.
  std::string out;
  Budget budget(options.limits);
  std::string system, prompt, response;
  auto data = [&]() {
    return with_think(
        {{"System", Value(system)}, {"Prompt", Value(prompt)}, {"Response", Value(response)}});
  };
  auto execute = [&]() {
    t.execute(out, data(), budget);
    system.clear();
    prompt.clear();
    response.clear();
  };
  for (const Message& m : msgs) {
    if (m.role == "system") {
      if (!prompt.empty() || !response.empty()) execute();
      system = m.content;
    } else if (m.role == "user") {
      if (!response.empty()) execute();
      prompt = m.content;
    } else if (m.role == "assistant") {
      response = m.content;
    }
  }
  std::vector<gotmpl::Node> root = t.root();
  ResponseCutter().list(root);
  t.with_bare_root(std::move(root)).execute(out, data(), budget);
  return out;
}

size_t levenshtein_distance(std::string_view a, std::string_view b, size_t limit) {
  auto runes = [](std::string_view s) {
    std::vector<uint32_t> r;
    r.reserve(s.size());
    for (size_t p = 0; p < s.size();) r.push_back(gotmpl::decode_rune(s, p));
    return r;
  };
  const std::vector<uint32_t> x = runes(a), y = runes(b);
  const size_t n = x.size(), m = y.size();
  if ((n > m ? n - m : m - n) > limit) return limit + 1;
  // Only cells within `limit` of the diagonal can hold a distance <= limit (Ukkonen's band).
  const size_t big = limit + 1;
  std::vector<size_t> prev(m + 1, big), cur(m + 1, big);
  for (size_t j = 0; j <= std::min(m, limit); ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    const size_t lo = i > limit ? i - limit : 0;
    const size_t hi = std::min(m, i + limit);
    std::fill(cur.begin(), cur.end(), big);
    if (lo == 0) cur[0] = i <= limit ? i : big;
    size_t row_min = lo == 0 ? cur[0] : big;
    for (size_t j = std::max<size_t>(lo, 1); j <= hi; ++j) {
      size_t best = prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1);
      best = std::min(best, prev[j] + 1);
      best = std::min(best, cur[j - 1] + 1);
      cur[j] = std::min(best, big);
      row_min = std::min(row_min, cur[j]);
    }
    if (row_min > limit) return limit + 1;
    std::swap(prev, cur);
  }
  return std::min(prev[m], big);
}

std::vector<BuiltinTemplate> parse_builtin_index(std::string_view index_json) {
  const Json index = Json::parse(index_json, nullptr, false);
  if (!index.is_array()) throw std::runtime_error("built-in template index: not a JSON array");
  std::vector<BuiltinTemplate> table;
  for (const Json& e : index) {
    const Json* name = member(e, "name");
    const Json* jinja = member(e, "template");
    if (!name || !name->is_string() || !jinja || !jinja->is_string()) {
      throw std::runtime_error("built-in template index: entry " + std::to_string(table.size()) +
                               " lacks a string \"name\" or \"template\"");
    }
    table.push_back({name->get<std::string>(), jinja->get<std::string>()});
  }
  return table;
}

std::optional<std::string> detect_builtin(std::string_view jinja,
                                          std::span<const BuiltinTemplate> table) {
  constexpr size_t kThreshold = 100;  // Ollama accepts the nearest template below this distance
  const BuiltinTemplate* found = nullptr;
  size_t best = kThreshold;
  for (const BuiltinTemplate& t : table) {
    // Strictly below the best so far: the first of equally near templates wins.
    const size_t d = levenshtein_distance(jinja, t.jinja, best - 1);
    if (d < best) {
      best = d;
      found = &t;
      if (d == 0) break;
    }
  }
  if (!found) return std::nullopt;
  return found->name;
}

}  // namespace corral::tmpl
