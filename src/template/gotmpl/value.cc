#include "template/gotmpl/value.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tokenizer/pretokenize.h"

namespace corral::tmpl::gotmpl {

struct Value::Composite {
  std::string str;
  List list;
  std::shared_ptr<const Composite> base;  // a sublist: base->list[from, to)
  size_t from = 0, to = 0;
  Map map;
  Fields fields;
  Function fn;
  bool nil_container = false;
  std::string type_name;
  std::shared_ptr<const std::string> text;
  std::shared_ptr<const std::string> json;
  std::vector<std::pair<std::string, std::function<Value()>>> methods;
};

namespace {
const std::string kEmpty;
const Value::Map kEmptyMap;
const Value::Fields kEmptyFields;
const Function kNoFunction;
}  // namespace

Value::Value(std::string s) : kind_(Kind::kString) {
  auto c = std::make_shared<Composite>();
  c->str = std::move(s);
  data_ = std::move(c);
}

Value Value::sublist(const Value& list, size_t from, size_t to) {
  Value v;
  v.kind_ = Kind::kList;
  auto c = std::make_shared<Composite>();
  const Composite* base = list.data_.get();
  if (base && base->base) {
    from += base->from;
    to += base->from;
    c->base = base->base;
  } else if (base) {
    c->base = list.data_;
  }
  c->from = from;
  c->to = to;
  v.data_ = std::move(c);
  return v;
}

Value Value::list(List items, bool nil_slice) {
  Value v;
  v.kind_ = Kind::kList;
  auto c = std::make_shared<Composite>();
  c->list = std::move(items);
  c->nil_container = nil_slice && c->list.empty();
  v.data_ = std::move(c);
  return v;
}

Value Value::map(Map entries, bool nil_map) {
  Value v;
  v.kind_ = Kind::kMap;
  auto c = std::make_shared<Composite>();
  c->map = std::move(entries);
  c->nil_container = nil_map && c->map.empty();
  v.data_ = std::move(c);
  return v;
}

Value Value::object(std::string type_name, Fields fields) {
  Value v;
  v.kind_ = Kind::kObject;
  auto c = std::make_shared<Composite>();
  c->fields = std::move(fields);
  c->type_name = std::move(type_name);
  v.data_ = std::move(c);
  return v;
}

Value Value::func(Function fn) {
  Value v;
  v.kind_ = Kind::kFunc;
  auto c = std::make_shared<Composite>();
  c->fn = std::move(fn);
  v.data_ = std::move(c);
  return v;
}

Value Value::with_text(std::string text) const {
  Value v = *this;
  auto c = data_ ? std::make_shared<Composite>(*data_) : std::make_shared<Composite>();
  c->text = std::make_shared<const std::string>(std::move(text));
  v.data_ = std::move(c);
  return v;
}

Value Value::with_json(std::string json) const {
  Value v = *this;
  auto c = data_ ? std::make_shared<Composite>(*data_) : std::make_shared<Composite>();
  c->json = std::make_shared<const std::string>(std::move(json));
  v.data_ = std::move(c);
  return v;
}

Value Value::with_type_name(std::string type_name) const {
  Value v = *this;
  auto c = data_ ? std::make_shared<Composite>(*data_) : std::make_shared<Composite>();
  c->type_name = std::move(type_name);
  v.data_ = std::move(c);
  return v;
}

const std::string& Value::as_string() const {
  return kind_ == Kind::kString && data_ ? data_->str : kEmpty;
}
std::span<const Value> Value::items() const {
  if (kind_ != Kind::kList || !data_) return {};
  if (data_->base) {
    return std::span<const Value>(data_->base->list).subspan(data_->from, data_->to - data_->from);
  }
  return data_->list;
}
const Value::Map& Value::entries() const {
  return kind_ == Kind::kMap && data_ ? data_->map : kEmptyMap;
}
const Value::Fields& Value::fields() const {
  return kind_ == Kind::kObject && data_ ? data_->fields : kEmptyFields;
}
const Function& Value::function() const {
  return kind_ == Kind::kFunc && data_ ? data_->fn : kNoFunction;
}
bool Value::is_nil_container() const { return data_ && data_->nil_container; }

Value Value::with_method(std::string name, std::function<Value()> fn) const {
  Value v = *this;
  auto c = data_ ? std::make_shared<Composite>(*data_) : std::make_shared<Composite>();
  c->methods.emplace_back(std::move(name), std::move(fn));
  v.data_ = std::move(c);
  return v;
}

const std::function<Value()>* Value::method(std::string_view name) const {
  if (!data_) return nullptr;
  for (const auto& [key, fn] : data_->methods) {
    if (key == name) return &fn;
  }
  return nullptr;
}

const Value* Value::field(std::string_view name) const {
  for (const auto& [key, value] : fields()) {
    if (key == name) return &value;
  }
  return nullptr;
}

const std::string* Value::text() const {
  return data_ && data_->text ? data_->text.get() : nullptr;
}
const std::string* Value::json() const {
  return data_ && data_->json ? data_->json.get() : nullptr;
}

std::string Value::type_name() const {
  if (data_ && !data_->type_name.empty()) return data_->type_name;
  switch (kind_) {
    case Kind::kInvalid:
    case Kind::kNil:
      return "<nil>";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float64";
    case Kind::kString:
      return "string";
    case Kind::kList:
      return "[]interface {}";
    case Kind::kMap:
      return "map[string]interface {}";
    case Kind::kObject:
      return "struct {}";
    case Kind::kFunc:
      return "func(...interface {}) interface {}";
  }
  return "?";
}

bool Value::truthy() const {
  switch (kind_) {
    case Kind::kInvalid:
    case Kind::kNil:
      return false;
    case Kind::kBool:
    case Kind::kInt:
      return int_ != 0;
    case Kind::kFloat:
      return float_ != 0;
    case Kind::kString:
    case Kind::kList:
    case Kind::kMap:
      return length() > 0;
    case Kind::kObject:
      return true;
    case Kind::kFunc:
      return static_cast<bool>(function());
  }
  return false;
}

int64_t Value::length() const {
  switch (kind_) {
    case Kind::kString:
      return static_cast<int64_t>(as_string().size());
    case Kind::kList:
      return static_cast<int64_t>(items().size());
    case Kind::kMap:
      return static_cast<int64_t>(entries().size());
    default:
      return -1;
  }
}

namespace {

// Shortest round-trip decimal digits of |f| and the decimal point position: f = 0.DIGITS × 10^dp.
void shortest_digits(double f, std::string& digits, int& dp) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, std::fabs(f), std::chars_format::scientific);
  std::string_view s(buf, static_cast<size_t>(res.ptr - buf));
  const size_t e = s.find('e');
  digits.clear();
  for (char c : s.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exp = 0;
  std::from_chars(s.data() + e + 1 + (s[e + 1] == '+'), s.data() + s.size(), exp);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  dp = exp + 1;
}

std::string exponent_suffix(int exp, bool two_digits) {
  std::string out = exp < 0 ? "e-" : "e+";
  const int a = exp < 0 ? -exp : exp;
  if (two_digits && a < 10) out += '0';
  out += std::to_string(a);
  return out;
}

// strconv's 'e' (scientific) or 'f' (positional) layout of shortest digits.
std::string layout(bool negative, const std::string& digits, int dp, bool scientific,
                   bool two_digit_exp) {
  std::string out = negative ? "-" : "";
  if (scientific) {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += exponent_suffix(digits == "0" ? 0 : dp - 1, two_digit_exp);
    return out;
  }
  if (dp <= 0) {
    out += "0";
    if (digits != "0") {
      out += '.';
      out.append(static_cast<size_t>(-dp), '0');
      out += digits;
    }
  } else if (static_cast<size_t>(dp) >= digits.size()) {
    out += digits;
    out.append(static_cast<size_t>(dp) - digits.size(), '0');
  } else {
    out += digits.substr(0, static_cast<size_t>(dp));
    out += '.';
    out += digits.substr(static_cast<size_t>(dp));
  }
  return out;
}

std::string special_float(double f) {
  if (std::isnan(f)) return "NaN";
  return f > 0 ? "+Inf" : "-Inf";
}

}  // namespace

uint32_t decode_rune(std::string_view s, size_t& pos, size_t* size_out) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  auto fail = [&]() {
    ++pos;
    if (size_out) *size_out = 1;
    return 0xFFFDu;
  };
  if (b0 < 0x80) {
    ++pos;
    if (size_out) *size_out = 1;
    return b0;
  }
  size_t n;
  uint32_t cp, min;
  if ((b0 & 0xE0) == 0xC0) {
    n = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    n = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return fail();
  }
  if (pos + n > s.size()) return fail();
  for (size_t i = 1; i < n; ++i) {
    const auto b = static_cast<unsigned char>(s[pos + i]);
    if ((b & 0xC0) != 0x80) return fail();
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return fail();
  pos += n;
  if (size_out) *size_out = n;
  return cp;
}

std::string format_float_shortest(double f) {
  if (std::isnan(f) || std::isinf(f)) return special_float(f);
  std::string digits;
  int dp;
  shortest_digits(f, digits, dp);
  const bool neg = std::signbit(f);
  const int exp = digits == "0" ? 0 : dp - 1;
  // strconv's 'g' with the shortest precision switches to %e from exponent 6 (and below -4).
  const bool scientific = exp < -4 || exp >= 6;
  return layout(neg, digits, dp, scientific, true);
}

std::string json_float(double f) {
  if (std::isnan(f) || std::isinf(f)) return "";
  const double a = std::fabs(f);
  const bool scientific = a != 0 && (a < 1e-6 || a >= 1e21);
  std::string digits;
  int dp;
  shortest_digits(f, digits, dp);
  std::string s = layout(std::signbit(f), digits, dp, scientific, false);
  return s;
}

std::string json_quote(std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t pos = 0; pos < s.size();) {
    const auto c = static_cast<unsigned char>(s[pos]);
    if (c < 0x80) {
      ++pos;
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
        case '<':
        case '>':
        case '&':
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
          break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          } else {
            out += static_cast<char>(c);
          }
      }
      continue;
    }
    size_t size = 0;
    const size_t start = pos;
    const uint32_t cp = decode_rune(s, pos, &size);
    if (cp == 0xFFFD && size == 1) {
      out += "\\ufffd";
    } else if (cp == 0x2028 || cp == 0x2029) {
      out += cp == 0x2028 ? "\\u2028" : "\\u2029";
    } else {
      out.append(s.substr(start, size));
    }
  }
  out += '"';
  return out;
}

std::string marshal_json(const Value& v) {
  if (const std::string* j = v.json()) return *j;
  switch (v.kind()) {
    case Kind::kInvalid:
    case Kind::kNil:
    case Kind::kFunc:
      return "null";
    case Kind::kBool:
      return v.as_bool() ? "true" : "false";
    case Kind::kInt:
      return std::to_string(v.as_int());
    case Kind::kFloat:
      return json_float(v.as_float());
    case Kind::kString:
      return json_quote(v.as_string());
    case Kind::kList: {
      if (v.is_nil_container()) return "null";
      std::string out = "[";
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += ',';
        out += marshal_json(v.items()[i]);
      }
      return out + "]";
    }
    case Kind::kMap: {
      if (v.is_nil_container()) return "null";
      std::string out = "{";
      bool first = true;
      for (const auto& [key, value] : v.entries()) {
        if (!first) out += ',';
        first = false;
        out += json_quote(key);
        out += ':';
        out += marshal_json(value);
      }
      return out + "}";
    }
    case Kind::kObject: {
      std::string out = "{";
      bool first = true;
      for (const auto& [key, value] : v.fields()) {
        if (!first) out += ',';
        first = false;
        out += json_quote(key);
        out += ':';
        out += marshal_json(value);
      }
      return out + "}";
    }
  }
  return "null";
}

std::string format_value(const Value& v, bool plus, bool nested) {
  if (const std::string* t = v.text()) return *t;
  switch (v.kind()) {
    case Kind::kInvalid:
      return nested ? "<nil>" : "<no value>";
    case Kind::kNil:
      return "<nil>";
    case Kind::kBool:
      return v.as_bool() ? "true" : "false";
    case Kind::kInt:
      return std::to_string(v.as_int());
    case Kind::kFloat:
      return format_float_shortest(v.as_float());
    case Kind::kString:
      return v.as_string();
    case Kind::kList: {
      std::string out = "[";
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += ' ';
        out += format_value(v.items()[i], plus, true);
      }
      return out + "]";
    }
    case Kind::kMap: {
      std::string out = "map[";
      bool first = true;
      for (const auto& [key, value] : v.entries()) {
        if (!first) out += ' ';
        first = false;
        out += key;
        out += ':';
        out += format_value(value, plus, true);
      }
      return out + "]";
    }
    case Kind::kObject: {
      std::string out = v.type_name().starts_with("*") && !nested ? "&{" : "{";
      bool first = true;
      for (const auto& [key, value] : v.fields()) {
        if (!first) out += ' ';
        first = false;
        if (plus) out += key + ":";
        out += format_value(value, plus, true);
      }
      return out + "}";
    }
    case Kind::kFunc: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%p", static_cast<const void*>(&v.function()));
      return buf;
    }
  }
  return "";
}

std::string encode_rune(uint32_t cp) {
  std::string out;
  tokenizer::utf8_append(out, cp);
  return out;
}

}  // namespace corral::tmpl::gotmpl
