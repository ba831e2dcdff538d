#include "template/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace corral::tmpl::jinja {

Error::Error(const std::string& kind, const std::string& message, int line, int column)
    : std::runtime_error(line > 0 ? kind + ": " + message + " (line " + std::to_string(line) +
                                        ", column " + std::to_string(column) + ")"
                                  : kind + ": " + message),
      kind_(kind),
      detail_(message),
      line_(line),
      column_(column) {}

const Value* CallArgs::get(const std::string& name, size_t index) const {
  for (const auto& [key, value] : kwargs)
    if (key == name) return &value;
  return index < args.size() ? &args[index] : nullptr;
}

namespace {

// Lists and dicts cannot change once built (the sandbox refuses their mutating methods), so the
// depth a container records when it is built is its real depth, except below a namespace (whose
// attributes change). A namespace cannot hold another one, so that part is bounded too: no value
// nests deeper than twice this, and none is cyclic.
constexpr int kMaxValueDepth = 128;

[[noreturn]] void too_deep() {
  throw Error::limit("RecursionError",
                     "value nested more than " + std::to_string(kMaxValueDepth) + " levels deep");
}

}  // namespace

int Value::nesting() const {
  if (type_ == Type::kList) return list_->depth;
  if (type_ == Type::kDict) return dict_->depth;
  return 0;
}

bool Value::holds_namespace() const {
  if (type_ == Type::kList) return list_->has_namespace;
  if (type_ == Type::kDict) return dict_->is_namespace || dict_->has_namespace;
  return false;
}

void Value::note_entry(const Value& value) const {
  const int depth = value.nesting() + 1;
  if (depth > kMaxValueDepth) too_deep();
  if (value.holds_namespace()) {
    if (dict_->is_namespace) {
      throw Error::limit("TypeError", "a namespace cannot hold another namespace");
    }
    dict_->has_namespace = true;
  }
  dict_->depth = std::max(dict_->depth, depth);
}

Value Value::list(ValueList items, ListKind kind) {
  Value v(Type::kList);
  v.list_ = std::make_shared<ListData>(ListData{std::move(items), kind});
  for (const Value& item : v.list_->items) {
    v.list_->depth = std::max(v.list_->depth, item.nesting() + 1);
    v.list_->has_namespace = v.list_->has_namespace || item.holds_namespace();
  }
  if (v.list_->depth > kMaxValueDepth) too_deep();
  return v;
}

Value Value::dict() {
  Value v(Type::kDict);
  v.dict_ = std::make_shared<DictData>();
  return v;
}

Value Value::namespace_object() {
  Value v = dict();
  v.dict_->is_namespace = true;
  return v;
}

Value Value::function(std::string name, Function fn) {
  Value v(Type::kFunction);
  v.fn_ = std::make_shared<FunctionData>(FunctionData{std::move(name), std::move(fn)});
  return v;
}

Value Value::from_json(const nlohmann::ordered_json& j) { return from_json(j, 0); }

Value Value::from_json(const nlohmann::ordered_json& j, int depth) {
  // Checked before recursing: a request's JSON can nest far deeper than the stack allows.
  if ((j.is_array() || j.is_object()) && depth >= kMaxValueDepth) too_deep();
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return none();
    case nlohmann::ordered_json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Value(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return Value(static_cast<int64_t>(j.get<uint64_t>()));
    case nlohmann::ordered_json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      ValueList items;
      items.reserve(j.size());
      for (const auto& item : j) items.push_back(from_json(item, depth + 1));
      return list(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      Value d = dict();
      for (const auto& [key, item] : j.items()) {
        Value value = from_json(item, depth + 1);
        d.note_entry(value);
        d.dict_->entries.emplace_back(key, std::move(value));
      }
      return d;
    }
    default:
      return none();
  }
}

const Value* Value::find(const Value& key) const {
  for (const auto& entry : dict_->entries)
    if (entry.first == key) return &entry.second;
  return nullptr;
}

void Value::set(const Value& key, Value value) const {
  note_entry(value);
  for (auto& entry : dict_->entries) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  dict_->entries.emplace_back(key, std::move(value));
}

size_t Value::size() const {
  switch (type_) {
    case Type::kString:
      return utf8_length(str_);
    case Type::kList:
      if (list_->kind == ListKind::kGenerator)
        throw Error("TypeError", "object of type 'generator' has no len()");
      return list_->items.size();
    case Type::kDict:
      if (!dict_->is_namespace) return dict_->entries.size();
      break;
    case Type::kUndefined:
      return 0;
    default:
      break;
  }
  throw Error("TypeError", "object of type '" + type_name() + "' has no len()");
}

bool Value::truthy() const {
  switch (type_) {
    case Type::kUndefined:
    case Type::kNone:
      return false;
    case Type::kBool:
    case Type::kInt:
      return int_ != 0;
    case Type::kFloat:
      return float_ != 0;
    case Type::kString:
      return !str_.empty();
    case Type::kList:
      return list_->kind == ListKind::kGenerator || !list_->items.empty();
    case Type::kDict:
      return dict_->is_namespace || !dict_->entries.empty();
    case Type::kFunction:
      return true;
  }
  return false;
}

bool operator==(const Value& a, const Value& b) {
  using T = Value::Type;
  bool a_num = a.is_bool() || a.is_number(), b_num = b.is_bool() || b.is_number();
  if (a_num && b_num) {
    if (a.is_float() || b.is_float()) return a.as_float() == b.as_float();
    return a.int_ == b.int_;
  }
  if (a.type_ != b.type_) return false;
  switch (a.type_) {
    case T::kUndefined:
    case T::kNone:
      return true;
    case T::kString:
      return a.str_ == b.str_;
    case T::kList: {
      if (a.list_ == b.list_) return true;
      if ((a.list_->kind == Value::ListKind::kTuple) != (b.list_->kind == Value::ListKind::kTuple))
        return false;
      if (a.list_->kind == Value::ListKind::kGenerator) return false;
      return a.list_->items == b.list_->items;
    }
    case T::kDict: {
      if (a.dict_ == b.dict_) return true;
      if (a.dict_->is_namespace || b.dict_->is_namespace) return false;
      if (a.dict_->entries.size() != b.dict_->entries.size()) return false;
      for (const auto& [key, value] : a.dict_->entries) {
        const Value* other = b.find(key);
        if (!other || !(*other == value)) return false;
      }
      return true;
    }
    case T::kFunction:
      return a.fn_ == b.fn_;
    default:
      return false;
  }
}

std::string Value::type_name() const {
  switch (type_) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "NoneType";
    case Type::kBool:
      return "bool";
    case Type::kInt:
      return "int";
    case Type::kFloat:
      return "float";
    case Type::kString:
      return "str";
    case Type::kList:
      return list_->kind == ListKind::kTuple       ? "tuple"
             : list_->kind == ListKind::kGenerator ? "generator"
                                                   : "list";
    case Type::kDict:
      return dict_->is_namespace ? "Namespace" : "dict";
    case Type::kFunction:
      return "function";
  }
  return "object";
}

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // shortest round-trip digits: [-]d[.ddd]e(+|-)XX
  bool negative = sci[0] == '-';
  if (negative) sci.erase(0, 1);
  size_t e = sci.find('e');
  int exponent = std::stoi(sci.substr(e + 1));
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  std::string out = negative ? "-" : "";
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0." + std::string(-exponent - 1, '0') + digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out += digits + std::string(exponent + 1 - digits.size(), '0') + ".0";
    } else {
      out += digits.substr(0, exponent + 1) + "." + digits.substr(exponent + 1);
    }
    return out;
  }
  out += digits.substr(0, 1);
  if (digits.size() > 1) out += "." + digits.substr(1);
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof(exp_buf), "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  return out + exp_buf;
}

std::string python_string_repr(const std::string& s) {
  char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
  std::string out(1, quote);
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    char buf[8];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += quote;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) < 0xA0) {
      // U+0080..U+009F are C1 controls, which Python's repr escapes.
      std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(s[i + 1]));
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += quote;
  return out;
}

std::string Value::str() const {
  switch (type_) {
    case Type::kUndefined:
      return "";
    case Type::kString:
      return str_;
    default:
      return repr();
  }
}

std::string Value::repr() const {
  switch (type_) {
    case Type::kUndefined:
      return "Undefined";
    case Type::kNone:
      return "None";
    case Type::kBool:
      return int_ ? "True" : "False";
    case Type::kInt:
      return std::to_string(int_);
    case Type::kFloat:
      return python_float_repr(float_);
    case Type::kString:
      return python_string_repr(str_);
    case Type::kList: {
      if (list_->kind == ListKind::kGenerator) return "<generator object>";
      bool tuple = list_->kind == ListKind::kTuple;
      std::string out = tuple ? "(" : "[";
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (i) out += ", ";
        out += list_->items[i].repr();
      }
      if (tuple && list_->items.size() == 1) out += ",";
      return out + (tuple ? ")" : "]");
    }
    case Type::kDict: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, value] : dict_->entries) {
        if (!first) out += ", ";
        first = false;
        out += key.repr() + ": " + value.repr();
      }
      out += "}";
      return dict_->is_namespace ? "<Namespace " + out + ">" : out;
    }
    case Type::kFunction:
      return "<function " + fn_->name + ">";
  }
  return "";
}

namespace {

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

std::string json_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return python_float_repr(v);
}

}  // namespace

std::string Value::to_json(int indent, const std::string& item_sep, const std::string& key_sep,
                           bool sort_keys) const {
  std::string out;
  json_into(out, indent, 0, item_sep, key_sep, sort_keys);
  return out;
}

void Value::json_into(std::string& out, int indent, int depth, const std::string& item_sep,
                      const std::string& key_sep, bool sort_keys) const {
  if (depth > 512) throw Error("ValueError", "Circular reference detected");
  auto newline = [&](int level) {
    if (indent < 0) return;
    out += '\n';
    out.append(static_cast<size_t>(indent) * level, ' ');
  };
  switch (type_) {
    case Type::kNone:
      out += "null";
      return;
    case Type::kBool:
      out += int_ ? "true" : "false";
      return;
    case Type::kInt:
      out += std::to_string(int_);
      return;
    case Type::kFloat:
      out += json_float(float_);
      return;
    case Type::kString:
      json_string(out, str_);
      return;
    case Type::kList: {
      if (list_->kind == ListKind::kGenerator) break;
      if (list_->items.empty()) {
        out += "[]";
        return;
      }
      out += '[';
      for (size_t i = 0; i < list_->items.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        list_->items[i].json_into(out, indent, depth + 1, item_sep, key_sep, sort_keys);
      }
      newline(depth);
      out += ']';
      return;
    }
    case Type::kDict: {
      if (dict_->is_namespace) break;
      if (dict_->entries.empty()) {
        out += "{}";
        return;
      }
      std::vector<std::pair<std::string, const Value*>> items;
      for (const auto& [key, value] : dict_->entries) {
        std::string k;
        switch (key.type_) {
          case Type::kString:
            k = key.str_;
            break;
          case Type::kInt:
            k = std::to_string(key.int_);
            break;
          case Type::kFloat:
            k = json_float(key.float_);
            break;
          case Type::kBool:
            k = key.int_ ? "true" : "false";
            break;
          case Type::kNone:
            k = "null";
            break;
          default:
            throw Error("TypeError",
                        "keys must be str, int, float, bool or None, not " + key.type_name());
        }
        items.emplace_back(std::move(k), &value);
      }
      if (sort_keys)
        std::stable_sort(items.begin(), items.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
      out += '{';
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        json_string(out, items[i].first);
        out += key_sep;
        items[i].second->json_into(out, indent, depth + 1, item_sep, key_sep, sort_keys);
      }
      newline(depth);
      out += '}';
      return;
    }
    default:
      break;
  }
  throw Error("TypeError", "Object of type " + type_name() + " is not JSON serializable");
}

std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80             ? 1
               : (c & 0xE0) == 0xC0 ? 2
               : (c & 0xF0) == 0xE0 ? 3
               : (c & 0xF8) == 0xF0 ? 4
                                    : 1;
    n = std::min(n, s.size() - i);
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace corral::tmpl::jinja
