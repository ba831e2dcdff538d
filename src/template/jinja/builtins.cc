#include "template/jinja/builtins.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <unordered_map>

namespace corral::tmpl::jinja {
namespace {

// The sandbox's bound on range() (jinja2.sandbox.MAX_RANGE).
constexpr int64_t kMaxRange = 100000;
// Bound on strings and lists built by repetition, so `'a' * 10**12` fails instead of exhausting
// memory.
constexpr size_t kMaxRepeat = size_t{64} << 20;

[[noreturn]] void type_error(const std::string& message) { throw Error("TypeError", message); }

void check_defined(const Value& v) {
  if (v.is_undefined()) throw Error("UndefinedError", v.undefined_hint());
}

Value undefined_member(const Value& object, const std::string& name) {
  std::string what = object.is_none() ? "None" : object.type_name() + " object";
  return Value::undefined(python_string_repr(what) + " has no attribute " +
                          python_string_repr(name));
}

// ---- strings ---------------------------------------------------------------------------------

bool is_py_space(unsigned char c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

std::string py_strip(const std::string& s, const Value* chars, bool left, bool right) {
  auto strip_char = [&](char c) {
    if (!chars || chars->is_none()) return is_py_space(static_cast<unsigned char>(c));
    return chars->as_string().find(c) != std::string::npos;
  };
  size_t begin = 0, end = s.size();
  if (left)
    while (begin < end && strip_char(s[begin])) ++begin;
  if (right)
    while (end > begin && strip_char(s[end - 1])) --end;
  return s.substr(begin, end - begin);
}

std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return s;
}

std::string ascii_lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return s;
}

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string py_capitalize(const std::string& s) {
  std::string out = ascii_lower(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

// Python's str.title(): a letter after a non-letter is upper-cased, the others lower-cased.
std::string py_title(const std::string& s) {
  std::string out = s;
  bool previous_cased = false;
  for (char& c : out) {
    if (is_alpha(c)) {
      c = previous_cased ? ascii_lower(std::string(1, c))[0] : ascii_upper(std::string(1, c))[0];
      previous_cased = true;
    } else {
      previous_cased = false;
    }
  }
  return out;
}

// Jinja2's title filter: words begin after whitespace, '-', '(', '{', '[' or '<'.
std::string jinja_title(const std::string& s) {
  std::string out;
  bool word_start = true;
  for (char c : s) {
    bool separator = is_py_space(static_cast<unsigned char>(c)) || c == '-' || c == '(' ||
                     c == '{' || c == '[' || c == '<';
    if (separator) {
      out += c;
      word_start = true;
    } else {
      out += word_start ? ascii_upper(std::string(1, c)) : ascii_lower(std::string(1, c));
      word_start = false;
    }
  }
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& with,
                       int64_t count) {
  std::string out;
  if (old.empty()) {
    auto chars = utf8_chars(s);
    int64_t done = 0;
    for (size_t i = 0; i <= chars.size(); ++i) {
      if (count < 0 || done < count) {
        out += with;
        ++done;
      }
      if (i < chars.size()) out += chars[i];
    }
    return out;
  }
  size_t pos = 0;
  int64_t done = 0;
  while (count < 0 || done < count) {
    size_t found = s.find(old, pos);
    if (found == std::string::npos) break;
    out.append(s, pos, found - pos);
    out += with;
    pos = found + old.size();
    ++done;
  }
  out.append(s, pos, std::string::npos);
  return out;
}

ValueList py_split(const std::string& s, const Value* sep, int64_t maxsplit) {
  ValueList out;
  if (!sep || sep->is_none()) {
    size_t i = 0;
    const size_t n = s.size();
    while (true) {
      while (i < n && is_py_space(static_cast<unsigned char>(s[i]))) ++i;
      if (i >= n) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        out.push_back(Value(s.substr(i)));
        break;
      }
      size_t j = i;
      while (j < n && !is_py_space(static_cast<unsigned char>(s[j]))) ++j;
      out.push_back(Value(s.substr(i, j - i)));
      i = j;
    }
    return out;
  }
  if (!sep->is_string()) type_error("must be str or None, not " + sep->type_name());
  const std::string& d = sep->as_string();
  if (d.empty()) throw Error("ValueError", "empty separator");
  size_t pos = 0;
  while (maxsplit < 0 || static_cast<int64_t>(out.size()) < maxsplit) {
    size_t found = s.find(d, pos);
    if (found == std::string::npos) break;
    out.push_back(Value(s.substr(pos, found - pos)));
    pos = found + d.size();
  }
  out.push_back(Value(s.substr(pos)));
  return out;
}

std::vector<std::string> py_splitlines(const std::string& s) {
  std::vector<std::string> lines;
  std::string line;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == '\x1c' || c == '\x1d' ||
        c == '\x1e') {
      if (c == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      lines.push_back(line);
      line.clear();
    } else {
      line += c;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

int64_t to_index(const Value& v, const char* what) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  type_error(std::string(what) + " indices must be integers or slices, not " + v.type_name());
}

std::string repeat(const std::string& s, int64_t n) {
  if (n <= 0 || s.empty()) return "";
  if (static_cast<size_t>(n) > kMaxRepeat / s.size())
    throw Error::limit("MemoryError", "repeated string is too large");
  const size_t total = s.size() * static_cast<size_t>(n);
  std::string out;
  out.reserve(total);
  out = s;
  while (out.size() * 2 <= total) out.append(out.data(), out.size());
  out.append(out.data(), total - out.size());
  return out;
}

// Python's str.format with positional ({} {0}) and keyword ({name}) fields; format specs other
// than an empty one are not supported.
std::string py_format(const std::string& fmt, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '{') {
        out += '{';
        ++i;
        continue;
      }
      size_t close = fmt.find('}', i);
      if (close == std::string::npos)
        throw Error("ValueError", "Single '{' encountered in format string");
      std::string field = fmt.substr(i + 1, close - i - 1);
      bool as_repr = false;
      size_t bang = field.find('!');
      if (bang != std::string::npos) {
        as_repr = field.substr(bang + 1) == "r";
        field = field.substr(0, bang);
      }
      size_t colon = field.find(':');
      if (colon != std::string::npos) field = field.substr(0, colon);
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_index < args.args.size()) v = &args.args[auto_index];
        ++auto_index;
      } else if (std::all_of(field.begin(), field.end(),
                             [](char d) { return d >= '0' && d <= '9'; })) {
        size_t index = std::stoul(field);
        if (index < args.args.size()) v = &args.args[index];
      } else {
        for (const auto& [key, value] : args.kwargs)
          if (key == field) v = &value;
        if (!v) throw Error("KeyError", python_string_repr(field));
      }
      if (!v) throw Error("IndexError", "Replacement index out of range for positional args tuple");
      out += as_repr ? v->repr() : v->str();
      i = close;
    } else if (c == '}') {
      if (i + 1 < fmt.size() && fmt[i + 1] == '}') ++i;
      out += '}';
    } else {
      out += c;
    }
  }
  return out;
}

// printf-style `fmt % args` for %s %r %d %i %f %%.
std::string py_percent(const std::string& fmt, const Value& operand) {
  ValueList args = operand.is_list() && operand.list_kind() == Value::ListKind::kTuple
                       ? operand.items()
                       : ValueList{operand};
  const Value* mapping = operand.is_dict() ? &operand : nullptr;
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') {
      out += fmt[i];
      continue;
    }
    size_t j = i + 1;
    const Value* v = nullptr;
    if (j < fmt.size() && fmt[j] == '(' && mapping) {
      size_t close = fmt.find(')', j);
      if (close == std::string::npos) throw Error("ValueError", "incomplete format key");
      v = mapping->find(Value(fmt.substr(j + 1, close - j - 1)));
      if (!v) throw Error("KeyError", python_string_repr(fmt.substr(j + 1, close - j - 1)));
      j = close + 1;
    }
    std::string spec;
    while (j < fmt.size() && std::string("-+ #0123456789.").find(fmt[j]) != std::string::npos)
      spec += fmt[j++];
    if (j >= fmt.size()) throw Error("ValueError", "incomplete format");
    char conv = fmt[j];
    i = j;
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (!v) {
      if (next >= args.size()) type_error("not enough arguments for format string");
      v = &args[next++];
    }
    char buf[512];
    switch (conv) {
      case 's':
        out += v->str();
        break;
      case 'r':
        out += v->repr();
        break;
      case 'd':
      case 'i':
        if (!v->is_number() && !v->is_bool())
          type_error("%d format: a real number is required, not " + v->type_name());
        std::snprintf(
            buf, sizeof(buf), ("%" + spec + "lld").c_str(),
            static_cast<long long>(v->is_float() ? std::trunc(v->as_float()) : v->as_int()));
        out += buf;
        break;
      case 'f':
      case 'e':
      case 'g':
        if (!v->is_number() && !v->is_bool())
          type_error("must be real number, not " + v->type_name());
        std::snprintf(buf, sizeof(buf), ("%" + spec + conv).c_str(), v->as_float());
        out += buf;
        break;
      default:
        throw Error("ValueError", std::string("unsupported format character '") + conv + "'");
    }
  }
  if (!mapping && next < args.size())
    type_error("not all arguments converted during string formatting");
  return out;
}

bool parse_py_int(const std::string& text, int base, int64_t& out) {
  std::string s = py_strip(text, nullptr, true, true);
  std::string digits;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i > 0 && i + 1 < s.size()) continue;
    digits += s[i];
  }
  if (digits.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(digits.c_str(), &end, base);
  if (errno != 0 || *end != '\0' || end == digits.c_str()) return false;
  if (digits.find_first_of("0123456789abcdefABCDEF") == std::string::npos) return false;
  out = v;
  return true;
}

bool parse_py_float(const std::string& text, double& out) {
  std::string s = py_strip(text, nullptr, true, true);
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0') return false;
  out = v;
  return true;
}

// ---- methods ---------------------------------------------------------------------------------

bool string_method_exists(const std::string& name) {
  static const char* kNames[] = {
      "startswith",   "endswith",  "strip",      "lstrip",   "rstrip",   "split",
      "rsplit",       "replace",   "upper",      "lower",    "title",    "capitalize",
      "format",       "join",      "find",       "rfind",    "count",    "splitlines",
      "isdigit",      "isalpha",   "isalnum",    "isspace",  "isupper",  "islower",
      "center",       "ljust",     "rjust",      "zfill",    "index",    "removeprefix",
      "removesuffix", "partition", "rpartition", "swapcase", "casefold", "encode",
      "expandtabs"};
  return std::find_if(std::begin(kNames), std::end(kNames),
                      [&](const char* n) { return name == n; }) != std::end(kNames);
}

int64_t int_arg(const Value* v, int64_t fallback) {
  if (!v || v->is_none()) return fallback;
  if (!v->is_int() && !v->is_bool()) type_error("an integer is required, not " + v->type_name());
  return v->as_int();
}

const std::string& str_arg(const Value* v, const char* method) {
  if (!v) type_error(std::string(method) + "() missing required argument");
  if (!v->is_string())
    type_error(std::string(method) + "() argument must be str, not " + v->type_name());
  return v->as_string();
}

Value call_string_method(const std::string& s, const std::string& name, CallArgs& a) {
  if (name == "startswith" || name == "endswith") {
    const Value* prefix = a.get("prefix", 0);
    if (!prefix) type_error(name + "() takes at least 1 argument (0 given)");
    ValueList options = prefix->is_list() ? prefix->items() : ValueList{*prefix};
    for (const Value& option : options) {
      if (!option.is_string())
        type_error(name + " first arg must be str or a tuple of str, not " + option.type_name());
      const std::string& o = option.as_string();
      bool hit = name == "startswith"
                     ? s.compare(0, o.size(), o) == 0
                     : s.size() >= o.size() && s.compare(s.size() - o.size(), o.size(), o) == 0;
      if (hit) return Value(true);
    }
    return Value(false);
  }
  if (name == "strip") return Value(py_strip(s, a.get("chars", 0), true, true));
  if (name == "lstrip") return Value(py_strip(s, a.get("chars", 0), true, false));
  if (name == "rstrip") return Value(py_strip(s, a.get("chars", 0), false, true));
  if (name == "split")
    return Value::list(py_split(s, a.get("sep", 0), int_arg(a.get("maxsplit", 1), -1)));
  if (name == "rsplit") {
    int64_t maxsplit = int_arg(a.get("maxsplit", 1), -1);
    const Value* sep = a.get("sep", 0);
    if (maxsplit < 0 || !sep || sep->is_none()) return Value::list(py_split(s, sep, maxsplit));
    const std::string& d = str_arg(sep, "rsplit");
    if (d.empty()) throw Error("ValueError", "empty separator");
    ValueList parts;
    size_t end = s.size();
    while (static_cast<int64_t>(parts.size()) < maxsplit) {
      size_t found = end >= d.size() ? s.rfind(d, end - d.size()) : std::string::npos;
      if (found == std::string::npos) break;
      parts.insert(parts.begin(), Value(s.substr(found + d.size(), end - found - d.size())));
      end = found;
    }
    parts.insert(parts.begin(), Value(s.substr(0, end)));
    return Value::list(std::move(parts));
  }
  if (name == "replace")
    return Value(py_replace(s, str_arg(a.get("old", 0), "replace"),
                            str_arg(a.get("new", 1), "replace"), int_arg(a.get("count", 2), -1)));
  if (name == "upper") return Value(ascii_upper(s));
  if (name == "lower" || name == "casefold") return Value(ascii_lower(s));
  if (name == "title") return Value(py_title(s));
  if (name == "capitalize") return Value(py_capitalize(s));
  if (name == "swapcase") {
    std::string out = s;
    for (char& c : out)
      c = (c >= 'a' && c <= 'z')   ? static_cast<char>(c - 32)
          : (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32)
                                   : c;
    return Value(out);
  }
  if (name == "format") return Value(py_format(s, a));
  if (name == "join") {
    const Value* items = a.get("iterable", 0);
    if (!items) type_error("join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    for (const Value& item : iterate(*items)) {
      if (!item.is_string())
        type_error("sequence item: expected str instance, " + item.type_name() + " found");
      if (!first) out += s;
      first = false;
      out += item.as_string();
    }
    return Value(out);
  }
  if (name == "find" || name == "rfind" || name == "index" || name == "count") {
    const std::string& sub = str_arg(a.get("sub", 0), name.c_str());
    if (name == "count") {
      if (sub.empty()) return Value(utf8_length(s) + 1);
      int64_t n = 0;
      for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      return Value(n);
    }
    size_t found = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (found == std::string::npos) {
      if (name == "index") throw Error("ValueError", "substring not found");
      return Value(-1);
    }
    return Value(utf8_length(s.substr(0, found)));
  }
  if (name == "splitlines") {
    ValueList lines;
    for (auto& line : py_splitlines(s)) lines.push_back(Value(line));
    return Value::list(std::move(lines));
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
      name == "isupper" || name == "islower") {
    if (s.empty()) return Value(false);
    bool cased = false;
    for (char ch : s) {
      unsigned char c = static_cast<unsigned char>(ch);
      bool digit = c >= '0' && c <= '9', alpha = is_alpha(ch);
      if (name == "isdigit" && !digit) return Value(false);
      if (name == "isalpha" && !alpha) return Value(false);
      if (name == "isalnum" && !digit && !alpha) return Value(false);
      if (name == "isspace" && !is_py_space(c)) return Value(false);
      if (name == "isupper" && c >= 'a' && c <= 'z') return Value(false);
      if (name == "islower" && c >= 'A' && c <= 'Z') return Value(false);
      cased = cased || alpha;
    }
    return Value(name == "isupper" || name == "islower" ? cased : true);
  }
  if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
    int64_t width = int_arg(a.get("width", 0), 0);
    const Value* fill_arg = a.get("fillchar", 1);
    std::string fill = fill_arg ? str_arg(fill_arg, name.c_str()) : std::string(" ");
    int64_t len = static_cast<int64_t>(utf8_length(s));
    if (width <= len) return Value(s);
    int64_t pad = std::min<int64_t>(width - len, static_cast<int64_t>(kMaxRepeat));
    if (name == "ljust") return Value(s + repeat(fill, pad));
    if (name == "rjust") return Value(repeat(fill, pad) + s);
    if (name == "zfill") {
      bool sign = !s.empty() && (s[0] == '-' || s[0] == '+');
      return Value(sign ? s.substr(0, 1) + repeat("0", pad) + s.substr(1) : repeat("0", pad) + s);
    }
    int64_t left = pad / 2 + (pad & width & 1);
    return Value(repeat(fill, left) + s + repeat(fill, pad - left));
  }
  if (name == "removeprefix") {
    const std::string& p = str_arg(a.get("prefix", 0), "removeprefix");
    return Value(s.compare(0, p.size(), p) == 0 ? s.substr(p.size()) : s);
  }
  if (name == "removesuffix") {
    const std::string& p = str_arg(a.get("suffix", 0), "removesuffix");
    bool hit =
        !p.empty() && s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
    return Value(hit ? s.substr(0, s.size() - p.size()) : s);
  }
  if (name == "partition" || name == "rpartition") {
    const std::string& sep = str_arg(a.get("sep", 0), name.c_str());
    if (sep.empty()) throw Error("ValueError", "empty separator");
    size_t found = name == "partition" ? s.find(sep) : s.rfind(sep);
    if (found == std::string::npos)
      return Value::list(name == "partition" ? ValueList{Value(s), Value(""), Value("")}
                                             : ValueList{Value(""), Value(""), Value(s)},
                         Value::ListKind::kTuple);
    return Value::list({Value(s.substr(0, found)), Value(sep), Value(s.substr(found + sep.size()))},
                       Value::ListKind::kTuple);
  }
  if (name == "expandtabs") return Value(py_replace(s, "\t", "        ", -1));
  throw Error("SecurityError", "access to attribute '" + name + "' of 'str' object is unsafe.");
}

Value dict_items(const Value& d) {
  ValueList items;
  for (const auto& [key, value] : d.entries())
    items.push_back(Value::list({key, value}, Value::ListKind::kTuple));
  return Value::list(std::move(items));
}

Value bound_method(const Value& object, const std::string& name) {
  return Value::function(name, [object, name](CallArgs& a) -> Value {
    if (object.is_string()) return call_string_method(object.as_string(), name, a);
    if (object.is_dict()) {
      if (name == "items") return dict_items(object);
      if (name == "keys" || name == "values") {
        ValueList out;
        for (const auto& [key, value] : object.entries())
          out.push_back(name == "keys" ? key : value);
        return Value::list(std::move(out));
      }
      if (name == "get") {
        const Value* key = a.get("key", 0);
        if (!key) type_error("get expected at least 1 argument, got 0");
        const Value* found = object.find(*key);
        if (found) return *found;
        const Value* fallback = a.get("default", 1);
        return fallback ? *fallback : Value::none();
      }
    }
    if (object.is_list()) {
      const Value* x = a.get("value", 0);
      if (!x) type_error(name + "() takes exactly one argument (0 given)");
      const ValueList& items = object.items();
      if (name == "count")
        return Value(static_cast<int64_t>(std::count(items.begin(), items.end(), *x)));
      auto it = std::find(items.begin(), items.end(), *x);
      if (it == items.end()) throw Error("ValueError", x->repr() + " is not in list");
      return Value(static_cast<int64_t>(it - items.begin()));
    }
    throw Error("SecurityError", "access to attribute '" + name + "' of '" + object.type_name() +
                                     "' object is unsafe.");
  });
}

bool is_dict_method(const std::string& name) {
  return name == "items" || name == "keys" || name == "values" || name == "get";
}

// Methods that mutate: ImmutableSandboxedEnvironment refuses them.
bool is_unsafe_mutator(const Value& object, const std::string& name) {
  if (object.is_dict() && !object.is_namespace())
    return name == "update" || name == "pop" || name == "popitem" || name == "setdefault" ||
           name == "clear";
  if (object.is_list())
    return name == "append" || name == "extend" || name == "insert" || name == "pop" ||
           name == "remove" || name == "clear" || name == "sort" || name == "reverse";
  return false;
}

// ---- filter helpers ---------------------------------------------------------------------------

// Jinja2's make_attrgetter: "a.b.0" walks attributes/items, integer parts as indices.
Value get_path(const Value& object, const Value& path) {
  if (!path.is_string()) return get_item(object, path);
  Value current = object;
  size_t start = 0;
  const std::string& p = path.as_string();
  while (true) {
    size_t dot = p.find('.', start);
    std::string part = p.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    int64_t index;
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(),
                                                [](char c) { return c >= '0' && c <= '9'; });
    if (numeric && parse_py_int(part, 10, index)) {
      current = get_item(current, Value(index));
    } else {
      current = get_item(current, Value(part));
    }
    if (dot == std::string::npos) return current;
    start = dot + 1;
  }
}

// Python's < for sort/min/max (numbers with numbers, strings with strings, sequences).
bool py_less(const Value& a, const Value& b) { return compare("<", a, b); }

Value sort_key(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value(ascii_lower(v.as_string()));
  return v;
}

Value generator(ValueList items) {
  return Value::list(std::move(items), Value::ListKind::kGenerator);
}

// The arguments after the first `skip` positional ones (for select/map's test or filter args).
CallArgs rest_args(const CallArgs& a, size_t skip) {
  CallArgs rest;
  for (size_t i = skip; i < a.args.size(); ++i) rest.args.push_back(a.args[i]);
  rest.kwargs = a.kwargs;
  return rest;
}

Value select_like(const Value& input, const CallArgs& a, bool by_attribute, bool keep) {
  ValueList out;
  // Jinja2's select/reject and map yield nothing for a falsy input (None included).
  if (!input.truthy()) return generator({});
  size_t skip = by_attribute ? 1 : 0;
  const Value* attribute = by_attribute ? (a.args.empty() ? nullptr : &a.args[0]) : nullptr;
  if (by_attribute && !attribute) type_error("selectattr/rejectattr need an attribute name");
  const Value* test = a.args.size() > skip ? &a.args[skip] : nullptr;
  for (const Value& item : iterate(input)) {
    Value subject = attribute ? get_path(item, *attribute) : item;
    bool pass;
    if (test) {
      if (!test->is_string()) type_error("test name must be a string");
      CallArgs test_args = rest_args(a, skip + 1);
      pass = call_test(test->as_string(), subject, test_args);
    } else {
      pass = subject.truthy();
    }
    if (pass == keep) out.push_back(item);
  }
  return generator(std::move(out));
}

std::string to_json_filter(const Value& value, const CallArgs& a) {
  const Value* ensure_ascii = a.get("ensure_ascii", 0);
  const Value* indent_arg = a.get("indent", 1);
  const Value* separators = a.get("separators", 2);
  const Value* sort_keys = a.get("sort_keys", 3);
  int indent = -1;
  if (indent_arg && !indent_arg->is_none()) {
    if (indent_arg->is_string()) type_error("string indent is not supported");
    indent = static_cast<int>(std::clamp<int64_t>(indent_arg->as_int(), 0, 64));
  }
  std::string item_sep = indent >= 0 ? "," : ", ", key_sep = ": ";
  if (separators && !separators->is_none()) {
    ValueList parts = iterate(*separators);
    if (parts.size() != 2 || !parts[0].is_string() || !parts[1].is_string())
      throw Error("ValueError", "separators must be a pair of strings");
    item_sep = parts[0].as_string();
    key_sep = parts[1].as_string();
  }
  std::string json = value.to_json(indent, item_sep, key_sep, sort_keys && sort_keys->truthy());
  if (!ensure_ascii || !ensure_ascii->truthy()) return json;
  std::string out;
  for (size_t i = 0; i < json.size();) {
    unsigned char c = static_cast<unsigned char>(json[i]);
    if (c < 0x80) {
      out += json[i++];
      continue;
    }
    size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    uint32_t cp = c & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
    for (size_t k = 1; k < n && i + k < json.size(); ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(json[i + k]) & 0x3F);
    i += n;
    char buf[16];
    if (cp >= 0x10000) {
      cp -= 0x10000;
      std::snprintf(buf, sizeof(buf), "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
    } else {
      std::snprintf(buf, sizeof(buf), "\\u%04x", cp);
    }
    out += buf;
  }
  return out;
}

Value py_round(const Value& v, int64_t precision, const std::string& method) {
  if (!v.is_number() && !v.is_bool())
    type_error("type " + v.type_name() + " doesn't define __round__ method");
  if (method == "common") {
    if (!v.is_float()) return Value(v.as_int());
    // "%.*f" rounds the exact binary value, ties to even: what Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof(buf), "%.*f",
                  static_cast<int>(std::clamp<int64_t>(precision, 0, 300)), v.as_float());
    return Value(std::strtod(buf, nullptr));
  }
  if (method != "floor" && method != "ceil")
    throw Error("FilterArgumentError", "method must be common, ceil or floor");
  double scale = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_float() * scale;
  return Value((method == "floor" ? std::floor(x) : std::ceil(x)) / scale);
}

std::string indent_filter(const std::string& text, const Value* width, bool first, bool blank) {
  std::string indention =
      width && width->is_string()
          ? width->as_string()
          : std::string(
                static_cast<size_t>(std::clamp<int64_t>(width ? width->as_int() : 4, 0, 4096)),
                ' ');
  std::vector<std::string> lines = py_splitlines(text + "\n");
  std::string out;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i) out += "\n" + indention;
      out += lines[i];
    }
  } else {
    out = lines.empty() ? "" : lines[0];
    if (lines.size() > 1) {
      out += "\n";
      for (size_t i = 1; i < lines.size(); ++i) {
        if (i > 1) out += "\n";
        if (!lines[i].empty()) out += indention;
        out += lines[i];
      }
    }
  }
  return first ? indention + out : out;
}

using FilterFn = Value (*)(const Value&, CallArgs&);

const std::unordered_map<std::string, FilterFn>& filters() {
  static const std::unordered_map<std::string, FilterFn> kFilters = {
      {"tojson", [](const Value& v, CallArgs& a) { return Value(to_json_filter(v, a)); }},
      {"trim", [](const Value& v,
                  CallArgs& a) { return Value(py_strip(v.str(), a.get("chars", 0), true, true)); }},
      {"length", [](const Value& v, CallArgs&) { return Value(v.size()); }},
      {"count", [](const Value& v, CallArgs&) { return Value(v.size()); }},
      {"join",
       [](const Value& v, CallArgs& a) {
         const Value* sep = a.get("d", 0);
         const Value* attribute = a.get("attribute", 1);
         std::string out;
         bool first = true;
         for (const Value& item : iterate(v)) {
           if (!first && sep) out += sep->str();
           first = false;
           out += (attribute && !attribute->is_none() ? get_path(item, *attribute) : item).str();
         }
         return Value(out);
       }},
      {"default",
       [](const Value& v, CallArgs& a) {
         const Value* fallback = a.get("default_value", 0);
         const Value* boolean = a.get("boolean", 1);
         bool use = v.is_undefined() || (boolean && boolean->truthy() && !v.truthy());
         return use ? (fallback ? *fallback : Value("")) : v;
       }},
      {"first",
       [](const Value& v, CallArgs&) {
         ValueList items = iterate(v);
         return items.empty() ? Value::undefined("No first item, sequence was empty.")
                              : items.front();
       }},
      {"last",
       [](const Value& v, CallArgs&) {
         if (v.is_list() && v.list_kind() == Value::ListKind::kGenerator)
           type_error("'generator' object is not reversible");
         ValueList items = iterate(v);
         return items.empty() ? Value::undefined("No last item, sequence was empty.")
                              : items.back();
       }},
      {"upper", [](const Value& v, CallArgs&) { return Value(ascii_upper(v.str())); }},
      {"lower", [](const Value& v, CallArgs&) { return Value(ascii_lower(v.str())); }},
      {"title", [](const Value& v, CallArgs&) { return Value(jinja_title(v.str())); }},
      {"capitalize", [](const Value& v, CallArgs&) { return Value(py_capitalize(v.str())); }},
      {"replace",
       [](const Value& v, CallArgs& a) {
         const Value* old = a.get("old", 0);
         const Value* with = a.get("new", 1);
         if (!old || !with) type_error("replace() needs old and new");
         return Value(py_replace(v.str(), old->str(), with->str(), int_arg(a.get("count", 2), -1)));
       }},
      {"string", [](const Value& v, CallArgs&) { return Value(v.str()); }},
      {"int",
       [](const Value& v, CallArgs& a) {
         const Value* fallback = a.get("default", 0);
         int base = static_cast<int>(int_arg(a.get("base", 1), 10));
         Value otherwise = fallback ? *fallback : Value(0);
         if (v.is_int() || v.is_bool()) return Value(v.as_int());
         if (v.is_float()) {
           if (!std::isfinite(v.as_float())) return otherwise;
           return Value(static_cast<int64_t>(std::trunc(v.as_float())));
         }
         if (v.is_string()) {
           int64_t i;
           if (parse_py_int(v.as_string(), base, i)) return Value(i);
           double d;
           if (parse_py_float(v.as_string(), d) && std::isfinite(d))
             return Value(static_cast<int64_t>(std::trunc(d)));
         }
         return otherwise;
       }},
      {"float",
       [](const Value& v, CallArgs& a) {
         const Value* fallback = a.get("default", 0);
         Value otherwise = fallback ? *fallback : Value(0.0);
         if (v.is_number() || v.is_bool()) return Value(v.as_float());
         double d;
         if (v.is_string() && parse_py_float(v.as_string(), d)) return Value(d);
         return otherwise;
       }},
      {"list", [](const Value& v, CallArgs&) { return Value::list(iterate(v)); }},
      {"items",
       [](const Value& v, CallArgs&) {
         if (v.is_undefined()) return Value::list({});
         if (!v.is_dict() || v.is_namespace())
           type_error("Can only get item pairs from a mapping.");
         return dict_items(v);
       }},
      {"dictsort",
       [](const Value& v, CallArgs& a) {
         if (!v.is_dict()) type_error("You can only sort by either \"key\" or \"value\"");
         const Value* case_sensitive = a.get("case_sensitive", 0);
         const Value* by = a.get("by", 1);
         const Value* reverse = a.get("reverse", 2);
         bool by_value = by && by->is_string() && by->as_string() == "value";
         bool cs = case_sensitive && case_sensitive->truthy();
         ValueList items = dict_items(v).items();
         std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
           size_t k = by_value ? 1 : 0;
           return py_less(sort_key(x.items()[k], cs), sort_key(y.items()[k], cs));
         });
         if (reverse && reverse->truthy()) std::reverse(items.begin(), items.end());
         return Value::list(std::move(items));
       }},
      {"selectattr", [](const Value& v, CallArgs& a) { return select_like(v, a, true, true); }},
      {"rejectattr", [](const Value& v, CallArgs& a) { return select_like(v, a, true, false); }},
      {"select", [](const Value& v, CallArgs& a) { return select_like(v, a, false, true); }},
      {"reject", [](const Value& v, CallArgs& a) { return select_like(v, a, false, false); }},
      {"map",
       [](const Value& v, CallArgs& a) {
         ValueList out;
         if (!v.truthy()) return generator({});
         const Value* attribute = nullptr;
         const Value* fallback = nullptr;
         for (const auto& [key, value] : a.kwargs) {
           if (key == "attribute") attribute = &value;
           if (key == "default") fallback = &value;
         }
         if (attribute) {
           for (const Value& item : iterate(v)) {
             Value got = get_path(item, *attribute);
             out.push_back(got.is_undefined() && fallback ? *fallback : got);
           }
           return generator(std::move(out));
         }
         if (a.args.empty() || !a.args[0].is_string()) type_error("map requires a filter name");
         CallArgs filter_args = rest_args(a, 1);
         for (const Value& item : iterate(v)) {
           CallArgs call = filter_args;
           out.push_back(call_filter(a.args[0].as_string(), item, call));
         }
         return generator(std::move(out));
       }},
      {"unique",
       [](const Value& v, CallArgs& a) {
         const Value* case_sensitive = a.get("case_sensitive", 0);
         const Value* attribute = a.get("attribute", 1);
         bool cs = case_sensitive && case_sensitive->truthy();
         ValueList out, seen;
         for (const Value& item : iterate(v)) {
           Value key =
               sort_key(attribute && !attribute->is_none() ? get_path(item, *attribute) : item, cs);
           if (std::find(seen.begin(), seen.end(), key) != seen.end()) continue;
           seen.push_back(key);
           out.push_back(item);
         }
         return generator(std::move(out));
       }},
      {"abs",
       [](const Value& v, CallArgs&) {
         check_defined(v);
         if (v.is_float()) return Value(std::fabs(v.as_float()));
         if (v.is_int() || v.is_bool()) return Value(v.as_int() < 0 ? -v.as_int() : v.as_int());
         type_error("bad operand type for abs(): '" + v.type_name() + "'");
       }},
      {"round",
       [](const Value& v, CallArgs& a) {
         const Value* method = a.get("method", 1);
         return py_round(v, int_arg(a.get("precision", 0), 0),
                         method && method->is_string() ? method->as_string() : "common");
       }},
      {"safe", [](const Value& v, CallArgs&) { return v; }},
      {"indent",
       [](const Value& v, CallArgs& a) {
         const Value* first = a.get("first", 1);
         const Value* blank = a.get("blank", 2);
         return Value(indent_filter(v.str(), a.get("width", 0), first && first->truthy(),
                                    blank && blank->truthy()));
       }},
      {"wordcount",
       [](const Value& v, CallArgs&) {
         int64_t n = 0;
         bool in_word = false;
         for (char ch : v.str()) {
           unsigned char c = static_cast<unsigned char>(ch);
           bool word = c >= 0x80 || c == '_' || (c >= '0' && c <= '9') || is_alpha(ch);
           if (word && !in_word) ++n;
           in_word = word;
         }
         return Value(n);
       }},
      {"reverse",
       [](const Value& v, CallArgs&) {
         if (v.is_string()) {
           auto chars = utf8_chars(v.as_string());
           std::string out;
           for (auto it = chars.rbegin(); it != chars.rend(); ++it) out += *it;
           return Value(out);
         }
         ValueList items = iterate(v);
         std::reverse(items.begin(), items.end());
         return generator(std::move(items));
       }},
      {"sort",
       [](const Value& v, CallArgs& a) {
         const Value* reverse = a.get("reverse", 0);
         const Value* case_sensitive = a.get("case_sensitive", 1);
         const Value* attribute = a.get("attribute", 2);
         bool cs = case_sensitive && case_sensitive->truthy();
         ValueList items = iterate(v);
         auto key = [&](const Value& x) {
           return sort_key(attribute && !attribute->is_none() ? get_path(x, *attribute) : x, cs);
         };
         std::stable_sort(items.begin(), items.end(),
                          [&](const Value& x, const Value& y) { return py_less(key(x), key(y)); });
         if (reverse && reverse->truthy()) std::reverse(items.begin(), items.end());
         return Value::list(std::move(items));
       }},
      {"sum",
       [](const Value& v, CallArgs& a) {
         const Value* attribute = a.get("attribute", 0);
         const Value* start = a.get("start", 1);
         Value total = start ? *start : Value(0);
         for (const Value& item : iterate(v))
           total = binary_op(
               "+", total, attribute && !attribute->is_none() ? get_path(item, *attribute) : item);
         return total;
       }},
      {"min",
       [](const Value& v, CallArgs& a) {
         const Value* case_sensitive = a.get("case_sensitive", 0);
         bool cs = case_sensitive && case_sensitive->truthy();
         ValueList items = iterate(v);
         if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
         Value best = items[0];
         for (const Value& item : items)
           if (py_less(sort_key(item, cs), sort_key(best, cs))) best = item;
         return best;
       }},
      {"max",
       [](const Value& v, CallArgs& a) {
         const Value* case_sensitive = a.get("case_sensitive", 0);
         bool cs = case_sensitive && case_sensitive->truthy();
         ValueList items = iterate(v);
         if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
         Value best = items[0];
         for (const Value& item : items)
           if (py_less(sort_key(best, cs), sort_key(item, cs))) best = item;
         return best;
       }},
      {"format",
       [](const Value& v, CallArgs& a) {
         if (!a.kwargs.empty()) {
           Value mapping = Value::dict();
           for (const auto& [key, value] : a.kwargs) mapping.set(Value(key), value);
           return Value(py_percent(v.str(), mapping));
         }
         return Value(py_percent(v.str(), Value::list(a.args, Value::ListKind::kTuple)));
       }},
      {"escape", [](const Value& v, CallArgs&) { return Value(html_escape(v.str())); }},
      {"e", [](const Value& v, CallArgs&) { return Value(html_escape(v.str())); }},
      {"attr",
       [](const Value& v, CallArgs& a) {
         const Value* name = a.get("name", 0);
         if (!name || !name->is_string()) type_error("attr requires a name");
         return get_attr(v, name->as_string());
       }},
      {"center",
       [](const Value& v, CallArgs& a) {
         CallArgs args;
         args.args.push_back(a.get("width", 0) ? *a.get("width", 0) : Value(80));
         return call_string_method(v.str(), "center", args);
       }},
      {"batch",
       [](const Value& v, CallArgs& a) {
         int64_t size = int_arg(a.get("linecount", 0), 1);
         if (size <= 0) throw Error("FilterArgumentError", "batch size must be positive");
         const Value* fill = a.get("fill_with", 1);
         ValueList rows, row;
         for (const Value& item : iterate(v)) {
           row.push_back(item);
           if (static_cast<int64_t>(row.size()) == size) {
             rows.push_back(Value::list(std::move(row)));
             row.clear();
           }
         }
         if (!row.empty()) {
           if (fill && !fill->is_none())
             while (static_cast<int64_t>(row.size()) < size) row.push_back(*fill);
           rows.push_back(Value::list(std::move(row)));
         }
         return generator(std::move(rows));
       }},
  };
  return kFilters;
}

bool test_sequence(const Value& v) {
  return v.is_undefined() || v.is_string() ||
         (v.is_list() && v.list_kind() != Value::ListKind::kGenerator) ||
         (v.is_dict() && !v.is_namespace());
}

}  // namespace

// ---- attribute and item access -----------------------------------------------------------------

Value get_attr(const Value& object, const std::string& name) {
  check_defined(object);
  if (object.is_namespace()) {
    const Value* found = object.find(Value(name));
    return found ? *found : undefined_member(object, name);
  }
  if (object.is_dict()) {
    if (is_dict_method(name)) return bound_method(object, name);
    if (is_unsafe_mutator(object, name)) return bound_method(object, name);
    const Value* found = object.find(Value(name));
    return found ? *found : undefined_member(object, name);
  }
  if (object.is_string() && string_method_exists(name)) return bound_method(object, name);
  if (object.is_list() && (name == "index" || name == "count" || is_unsafe_mutator(object, name)))
    return bound_method(object, name);
  return undefined_member(object, name);
}

Value get_item(const Value& object, const Value& key) {
  check_defined(object);
  if (object.is_dict() && !object.is_namespace()) {
    const Value* found = object.find(key);
    if (found) return *found;
  } else if ((object.is_list() && object.list_kind() != Value::ListKind::kGenerator) ||
             object.is_string()) {
    if (key.is_int() || key.is_bool()) {
      int64_t index = key.as_int();
      if (object.is_list()) {
        int64_t n = static_cast<int64_t>(object.items().size());
        if (index < 0) index += n;
        if (index >= 0 && index < n) return object.items()[static_cast<size_t>(index)];
      } else {
        auto chars = utf8_chars(object.as_string());
        int64_t n = static_cast<int64_t>(chars.size());
        if (index < 0) index += n;
        if (index >= 0 && index < n) return Value(chars[static_cast<size_t>(index)]);
      }
      std::string what = object.type_name() + " object";
      return Value::undefined(python_string_repr(what) + " has no element " + key.repr());
    }
  }
  if (key.is_string()) return get_attr(object, key.as_string());
  std::string what = object.is_none() ? "None" : object.type_name() + " object";
  return Value::undefined(python_string_repr(what) + " has no element " + key.repr());
}

Value get_slice(const Value& object, const Value& start, const Value& stop, const Value& step) {
  check_defined(object);
  int64_t st = step.is_none() ? 1 : to_index(step, "slice");
  if (st == 0) throw Error("ValueError", "slice step cannot be zero");
  std::vector<std::string> chars;
  int64_t n;
  if (object.is_string()) {
    chars = utf8_chars(object.as_string());
    n = static_cast<int64_t>(chars.size());
  } else if (object.is_list() && object.list_kind() != Value::ListKind::kGenerator) {
    n = static_cast<int64_t>(object.items().size());
  } else {
    type_error("'" + object.type_name() + "' object is not subscriptable");
  }
  auto adjust = [&](const Value& bound, int64_t fallback) {
    if (bound.is_none()) return fallback;
    int64_t i = to_index(bound, "slice");
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  int64_t lo = adjust(start, st < 0 ? n - 1 : 0);
  int64_t hi = adjust(stop, st < 0 ? -1 : n);
  ValueList items;
  std::string text;
  for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) {
    if (object.is_string()) {
      text += chars[static_cast<size_t>(i)];
    } else {
      items.push_back(object.items()[static_cast<size_t>(i)]);
    }
  }
  if (object.is_string()) return Value(text);
  return Value::list(std::move(items), object.list_kind());
}

ValueList iterate(const Value& value) {
  switch (value.type()) {
    case Value::Type::kUndefined:
      return {};
    case Value::Type::kList:
      return value.items();
    case Value::Type::kDict: {
      if (value.is_namespace()) break;
      ValueList keys;
      for (const auto& entry : value.entries()) keys.push_back(entry.first);
      return keys;
    }
    case Value::Type::kString: {
      ValueList out;
      for (auto& c : utf8_chars(value.as_string())) out.push_back(Value(c));
      return out;
    }
    default:
      break;
  }
  type_error("'" + value.type_name() + "' object is not iterable");
}

// ---- operators ----------------------------------------------------------------------------------

Value negate(const Value& v) {
  check_defined(v);
  if (v.is_float()) return Value(-v.as_float());
  if (v.is_int() || v.is_bool()) return Value(-v.as_int());
  type_error("bad operand type for unary -: '" + v.type_name() + "'");
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string left = a.str(), right = b.str();
    if (left.size() + right.size() > kMaxRepeat)
      throw Error::limit("MemoryError", "string is too large");
    return Value(left + right);
  }
  check_defined(a);
  check_defined(b);
  bool numbers = (a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool());
  bool floats = a.is_float() || b.is_float();
  auto unsupported = [&]() -> Value {
    type_error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
               b.type_name() + "'");
  };
  if (op == "+") {
    if (numbers) {
      if (floats) return Value(a.as_float() + b.as_float());
      int64_t r;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r))
        throw Error("OverflowError", "integer overflow");
      return Value(r);
    }
    if (a.is_string()) {
      if (!b.is_string())
        type_error("can only concatenate str (not \"" + b.type_name() + "\") to str");
      if (a.as_string().size() + b.as_string().size() > kMaxRepeat)
        throw Error::limit("MemoryError", "string is too large");
      return Value(a.as_string() + b.as_string());
    }
    if (a.is_list() && a.list_kind() != Value::ListKind::kGenerator) {
      if (!b.is_list() ||
          (b.list_kind() == Value::ListKind::kTuple) !=
              (a.list_kind() == Value::ListKind::kTuple) ||
          b.list_kind() == Value::ListKind::kGenerator)
        type_error("can only concatenate " + a.type_name() + " (not \"" + b.type_name() +
                   "\") to " + a.type_name());
      ValueList items = a.items();
      items.insert(items.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(items), a.list_kind());
    }
    return unsupported();
  }
  if (op == "-") {
    if (!numbers) return unsupported();
    if (floats) return Value(a.as_float() - b.as_float());
    int64_t r;
    if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r))
      throw Error("OverflowError", "integer overflow");
    return Value(r);
  }
  if (op == "*") {
    if (numbers) {
      if (floats) return Value(a.as_float() * b.as_float());
      int64_t r;
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r))
        throw Error("OverflowError", "integer overflow");
      return Value(r);
    }
    const Value* seq = (a.is_int() || a.is_bool()) ? &b : &a;
    const Value* count = seq == &a ? &b : &a;
    if (!(count->is_int() || count->is_bool())) return unsupported();
    if (seq->is_string()) return Value(repeat(seq->as_string(), count->as_int()));
    if (seq->is_list() && seq->list_kind() != Value::ListKind::kGenerator) {
      ValueList items;
      int64_t n = count->as_int();
      if (n > 0 && !seq->items().empty() &&
          static_cast<size_t>(n) > kMaxRepeat / seq->items().size() / 64)
        throw Error::limit("MemoryError", "repeated list is too large");
      for (int64_t i = 0; i < n; ++i)
        items.insert(items.end(), seq->items().begin(), seq->items().end());
      return Value::list(std::move(items), seq->list_kind());
    }
    return unsupported();
  }
  if (op == "/") {
    if (!numbers) return unsupported();
    if (b.as_float() == 0) throw Error("ZeroDivisionError", "division by zero");
    return Value(a.as_float() / b.as_float());
  }
  if (op == "//" || op == "%") {
    if (op == "%" && a.is_string()) return Value(py_percent(a.as_string(), b));
    if (!numbers) return unsupported();
    if (b.as_float() == 0)
      throw Error("ZeroDivisionError",
                  op == "//" ? "integer division or modulo by zero" : "integer modulo by zero");
    if (floats) {
      double x = a.as_float(), y = b.as_float();
      double mod = std::fmod(x, y);
      if (mod != 0 && ((mod < 0) != (y < 0))) mod += y;
      if (op == "%") return Value(mod);
      return Value(std::floor((x - mod) / y + 0.5));
    }
    int64_t x = a.as_int(), y = b.as_int();
    if (x == std::numeric_limits<int64_t>::min() && y == -1)
      throw Error("OverflowError", "integer overflow");
    int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0))) {
      --q;
      r += y;
    }
    return Value(op == "//" ? q : r);
  }
  if (op == "**") {
    if (!numbers) return unsupported();
    if (floats || b.as_int() < 0) {
      if (a.as_float() == 0 && b.as_float() < 0)
        throw Error("ZeroDivisionError", "0.0 cannot be raised to a negative power");
      return Value(std::pow(a.as_float(), b.as_float()));
    }
    int64_t base = a.as_int(), exponent = b.as_int(), result = 1;
    while (exponent > 0) {
      if (exponent & 1)
        if (__builtin_mul_overflow(result, base, &result))
          throw Error("OverflowError", "integer overflow");
      exponent >>= 1;
      if (exponent && __builtin_mul_overflow(base, base, &base))
        throw Error("OverflowError", "integer overflow");
    }
    return Value(result);
  }
  throw Error("TemplateSyntaxError", "unknown operator " + op);
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return a == b;
  if (op == "!=") return a != b;
  if (op == "in" || op == "not in") {
    bool found;
    if (b.is_string()) {
      if (!a.is_string())
        type_error("'in <string>' requires string as left operand, not " + a.type_name());
      found = b.as_string().find(a.as_string()) != std::string::npos;
    } else if (b.is_dict() && !b.is_namespace()) {
      found = b.find(a) != nullptr;
    } else if (b.is_list() || b.is_undefined()) {
      ValueList items = iterate(b);
      found = std::find(items.begin(), items.end(), a) != items.end();
    } else {
      type_error("argument of type '" + b.type_name() + "' is not iterable");
    }
    return op == "in" ? found : !found;
  }
  check_defined(a);
  check_defined(b);
  int order;
  if ((a.is_number() || a.is_bool()) && (b.is_number() || b.is_bool())) {
    if (a.is_float() || b.is_float()) {
      double x = a.as_float(), y = b.as_float();
      if (std::isnan(x) || std::isnan(y)) return false;
      order = x < y ? -1 : x > y ? 1 : 0;
    } else {
      order = a.as_int() < b.as_int() ? -1 : a.as_int() > b.as_int() ? 1 : 0;
    }
  } else if (a.is_string() && b.is_string()) {
    int c = a.as_string().compare(b.as_string());
    order = c < 0 ? -1 : c > 0 ? 1 : 0;
  } else if (a.is_list() && b.is_list() && a.list_kind() == b.list_kind() &&
             a.list_kind() != Value::ListKind::kGenerator) {
    const ValueList &x = a.items(), &y = b.items();
    order = 0;
    size_t i = 0;
    for (; i < x.size() && i < y.size(); ++i) {
      if (x[i] == y[i]) continue;
      order = compare("<", x[i], y[i]) ? -1 : 1;
      break;
    }
    if (order == 0 && i == std::min(x.size(), y.size()))
      order = x.size() < y.size() ? -1 : x.size() > y.size() ? 1 : 0;
  } else {
    type_error("'" + op + "' not supported between instances of '" + a.type_name() + "' and '" +
               b.type_name() + "'");
  }
  if (op == "<") return order < 0;
  if (op == "<=") return order <= 0;
  if (op == ">") return order > 0;
  if (op == ">=") return order >= 0;
  throw Error("TemplateSyntaxError", "unknown comparison " + op);
}

// ---- filters and tests
// ----------------------------------------------------------------------------

Value call_filter(const std::string& name, const Value& input, CallArgs& args) {
  const auto& table = filters();
  std::string key = name == "d" ? "default" : name == "count" ? "length" : name;
  auto it = table.find(key);
  if (it == table.end()) throw Error("TemplateAssertionError", "No filter named '" + name + "'.");
  return it->second(input, args);
}

bool call_test(const std::string& name, const Value& v, CallArgs& a) {
  const Value* arg = a.get("value", 0);
  auto need_arg = [&]() -> const Value& {
    if (!arg) type_error("test '" + name + "' requires an argument");
    return *arg;
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "string") return v.is_string();
  if (name == "number") return v.is_number() || v.is_bool();
  if (name == "integer") return v.is_int();
  if (name == "float") return v.is_float();
  if (name == "boolean") return v.is_bool();
  if (name == "true") return v.is_bool() && v.as_bool();
  if (name == "false") return v.is_bool() && !v.as_bool();
  if (name == "mapping") return v.is_dict() && !v.is_namespace();
  if (name == "iterable")
    return v.is_undefined() || v.is_string() || v.is_list() || (v.is_dict() && !v.is_namespace());
  if (name == "sequence") return test_sequence(v);
  if (name == "callable") return v.is_function();
  if (name == "odd" || name == "even") {
    Value r = binary_op("%", v, Value(2));
    return (name == "odd") == (r.as_float() == 1);
  }
  if (name == "divisibleby") return binary_op("%", v, need_arg()).as_float() == 0;
  if (name == "eq" || name == "equalto" || name == "==") return v == need_arg();
  if (name == "ne" || name == "!=") return v != need_arg();
  if (name == "lt" || name == "lessthan" || name == "<") return compare("<", v, need_arg());
  if (name == "le" || name == "<=") return compare("<=", v, need_arg());
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(">", v, need_arg());
  if (name == "ge" || name == ">=") return compare(">=", v, need_arg());
  if (name == "in") return compare("in", v, need_arg());
  if (name == "sameas") {
    const Value& other = need_arg();
    if (v.type() != other.type()) return false;
    if (v.is_none() || v.is_undefined()) return true;
    if (v.is_bool() || v.is_int()) return v.as_int() == other.as_int();
    return v == other && (v.is_string() || v.is_float());
  }
  if (name == "lower") return v.is_string() && ascii_lower(v.as_string()) == v.as_string();
  if (name == "upper") return v.is_string() && ascii_upper(v.as_string()) == v.as_string();
  if (name == "escaped") return false;
  if (name == "filter")
    return need_arg().is_string() && (filters().count(arg->as_string()) || arg->as_string() == "d");
  if (name == "test") {
    static const char* kTests[] = {
        "defined",  "undefined", "none",        "string",      "number",   "integer",  "float",
        "boolean",  "true",      "false",       "mapping",     "iterable", "sequence", "callable",
        "odd",      "even",      "divisibleby", "eq",          "equalto",  "ne",       "lt",
        "lessthan", "le",        "gt",          "greaterthan", "ge",       "in",       "sameas",
        "lower",    "upper",     "escaped",     "filter",      "test"};
    const Value& t = need_arg();
    return t.is_string() && std::find_if(std::begin(kTests), std::end(kTests), [&](const char* n) {
                              return t.as_string() == n;
                            }) != std::end(kTests);
  }
  throw Error("TemplateAssertionError", "No test named '" + name + "'.");
}

Value builtin_globals() {
  Value globals = Value::dict();
  globals.set(
      Value("range"), Value::function("range", [](CallArgs& a) {
        if (!a.kwargs.empty()) type_error("range() takes no keyword arguments");
        for (const Value& arg : a.args)
          if (!arg.is_int() && !arg.is_bool())
            type_error("'" + arg.type_name() + "' object cannot be interpreted as an integer");
        int64_t start = 0, stop = 0, step = 1;
        if (a.args.size() == 1) {
          stop = a.args[0].as_int();
        } else if (a.args.size() == 2 || a.args.size() == 3) {
          start = a.args[0].as_int();
          stop = a.args[1].as_int();
          if (a.args.size() == 3) step = a.args[2].as_int();
        } else {
          type_error("range expected 1 to 3 arguments, got " + std::to_string(a.args.size()));
        }
        if (step == 0) throw Error("ValueError", "range() arg 3 must not be zero");
        double count = std::ceil((static_cast<double>(stop) - static_cast<double>(start)) /
                                 static_cast<double>(step));
        if (count > static_cast<double>(kMaxRange))
          throw Error::limit(
              "OverflowError",
              "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        ValueList items;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
          items.push_back(Value(i));
        return Value::list(std::move(items));
      }));
  auto from_kwargs = [](Value target, CallArgs& a) {
    for (const Value& arg : a.args) {
      if (!arg.is_dict()) type_error("cannot convert " + arg.type_name() + " to a dict");
      for (const auto& [key, value] : arg.entries()) target.set(key, value);
    }
    for (const auto& [key, value] : a.kwargs) target.set(Value(key), value);
    return target;
  };
  globals.set(Value("dict"), Value::function("dict", [from_kwargs](CallArgs& a) {
                return from_kwargs(Value::dict(), a);
              }));
  globals.set(Value("namespace"), Value::function("namespace", [from_kwargs](CallArgs& a) {
                return from_kwargs(Value::namespace_object(), a);
              }));
  return globals;
}

}  // namespace corral::tmpl::jinja
