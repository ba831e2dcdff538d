// The built-in functions of Go's text/template and the subset of Go's fmt package they need
// (Sprint, Sprintln, Sprintf with flags, width, precision and Go's %!verb(type=value) errors).
#include "template/gotmpl/funcs.h"

#include <utf8proc.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "template/gotmpl/template.h"

namespace corral::tmpl::gotmpl {
namespace {

[[noreturn]] void fail(const std::string& msg) { throw std::runtime_error(msg); }

// Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space.
bool is_print(uint32_t r) {
  if (r == ' ') return true;
  if (r < 0x20 || r == 0x7f) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(r))) {
    case UTF8PROC_CATEGORY_CN:
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP:
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
      return false;
    default:
      return true;
  }
}

size_t rune_count(std::string_view s) {
  size_t n = 0;
  for (size_t p = 0; p < s.size(); ++n) decode_rune(s, p);
  return n;
}

// Go's basicKind classes for comparisons.
enum class Basic { kInvalid, kBool, kInt, kFloat, kString, kOther };
Basic basic_kind(const Value& v) {
  switch (v.kind()) {
    case Kind::kBool:
      return Basic::kBool;
    case Kind::kInt:
      return Basic::kInt;
    case Kind::kFloat:
      return Basic::kFloat;
    case Kind::kString:
      return Basic::kString;
    case Kind::kInvalid:
    case Kind::kNil:
      return Basic::kInvalid;
    default:
      return Basic::kOther;
  }
}

bool is_nilish(const Value& v) {
  return v.is_invalid() || v.is_nil() || v.is_nil_container() ||
         (v.kind() == Kind::kFunc && !v.function());
}

bool eq(std::span<const Value> args) {
  const Value& a = args[0];
  if (args.size() < 2) fail("missing argument for comparison");
  const Basic k1 = basic_kind(a);
  for (size_t i = 1; i < args.size(); ++i) {
    const Value& b = args[i];
    const Basic k2 = basic_kind(b);
    bool truth = false;
    if (k1 != k2) {
      if (k1 != Basic::kInvalid && k2 != Basic::kInvalid) {
        fail("incompatible types for comparison");
      }
    } else {
      switch (k1) {
        case Basic::kBool:
        case Basic::kInt:
          truth = a.as_int() == b.as_int();
          break;
        case Basic::kFloat:
          truth = a.as_float() == b.as_float();
          break;
        case Basic::kString:
          truth = a.as_string() == b.as_string();
          break;
        case Basic::kInvalid:
          truth = true;
          break;
        case Basic::kOther:
          if (a.kind() != b.kind()) {
            fail("non-comparable types " + format_value(a) + ": " + a.type_name() + ", " +
                 b.type_name() + ": " + format_value(b));
          }
          if (is_nilish(a) || is_nilish(b)) {
            truth = is_nilish(a) == is_nilish(b);
          } else {
            fail("non-comparable type " + format_value(b) + ": " + b.type_name());
          }
          break;
      }
    }
    if (truth) return true;
  }
  return false;
}

bool lt(const Value& a, const Value& b) {
  const Basic k1 = basic_kind(a);
  const Basic k2 = basic_kind(b);
  if (k1 == Basic::kInvalid || k1 == Basic::kOther || k2 == Basic::kInvalid ||
      k2 == Basic::kOther) {
    fail("invalid type for comparison");
  }
  if (k1 != k2) fail("incompatible types for comparison");
  switch (k1) {
    case Basic::kBool:
      fail("invalid type for comparison");
    case Basic::kInt:
      return a.as_int() < b.as_int();
    case Basic::kFloat:
      return a.as_float() < b.as_float();
    case Basic::kString:
      return a.as_string() < b.as_string();
    default:
      fail("invalid type for comparison");
  }
}

int64_t index_arg(const Value& index, int64_t cap) {
  int64_t x = 0;
  switch (index.kind()) {
    case Kind::kInt:
      x = index.as_int();
      break;
    case Kind::kInvalid:
    case Kind::kNil:
      fail("cannot index slice/array with nil");
    default:
      fail("cannot index slice/array with type " + index.type_name());
  }
  if (x < 0 || x > cap) fail("index out of range: " + std::to_string(x));
  return x;
}

Value index(std::span<const Value> args) {
  Value item = args[0];
  if (item.is_invalid() || item.is_nil()) fail("index of untyped nil");
  for (size_t i = 1; i < args.size(); ++i) {
    const Value& idx = args[i];
    if (item.is_nil() || item.is_invalid()) fail("index of nil pointer");
    switch (item.kind()) {
      case Kind::kList: {
        const int64_t x = index_arg(idx, item.length());
        if (x >= item.length()) fail("index out of range: " + std::to_string(x));
        item = Value(item.items()[static_cast<size_t>(x)]);
        break;
      }
      case Kind::kString: {
        const int64_t x = index_arg(idx, item.length());
        if (x >= item.length()) fail("index out of range: " + std::to_string(x));
        item = Value(static_cast<int64_t>(static_cast<unsigned char>(item.as_string()[x])))
                   .with_type_name("uint8");
        break;
      }
      case Kind::kMap: {
        if (idx.kind() != Kind::kString) {
          if (idx.is_invalid() || idx.is_nil()) fail("value is nil; should be of type string");
          fail("value has type " + idx.type_name() + "; should be string");
        }
        auto it = item.entries().find(idx.as_string());
        item = it != item.entries().end() ? it->second : Value::nil();
        break;
      }
      default:
        fail("can't index item of type " + item.type_name());
    }
  }
  return item;
}

Value slice(std::span<const Value> args) {
  const Value& item = args[0];
  if (item.is_invalid() || item.is_nil()) fail("slice of untyped nil");
  const size_t n_idx = args.size() - 1;
  if (n_idx > 3) fail("too many slice indexes: " + std::to_string(n_idx));
  if (item.kind() == Kind::kString) {
    if (n_idx == 3) fail("cannot 3-index slice a string");
  } else if (item.kind() != Kind::kList) {
    fail("can't slice item of type " + item.type_name());
  }
  const int64_t cap = item.length();
  int64_t idx[3] = {0, cap, cap};
  for (size_t i = 0; i < n_idx; ++i) idx[i] = index_arg(args[i + 1], cap);
  if (idx[0] > idx[1]) {
    fail("invalid slice index: " + std::to_string(idx[0]) + " > " + std::to_string(idx[1]));
  }
  if (n_idx == 3 && idx[1] > idx[2]) {
    fail("invalid slice index: " + std::to_string(idx[1]) + " > " + std::to_string(idx[2]));
  }
  const auto from = static_cast<size_t>(idx[0]);
  const auto to = static_cast<size_t>(idx[1]);
  if (item.kind() == Kind::kString) return Value(item.as_string().substr(from, to - from));
  return Value::sublist(item, from, to);
}

// The arguments of html/js/urlquery as one string (Go's evalArgs): a single string as is, else
// fmt.Sprint with missing values printed as "<no value>".
std::string eval_args(std::span<const Value> args) {
  if (args.size() == 1 && args[0].kind() == Kind::kString) return args[0].as_string();
  std::vector<Value> printable(args.begin(), args.end());
  for (Value& v : printable) {
    if (v.is_invalid() || v.is_nil()) v = Value("<no value>");
  }
  return sprint(printable);
}

// ---- fmt ----

struct Spec {
  bool minus = false, plus = false, sharp = false, space = false, zero = false;
  int width = -1;
  int prec = -1;
  char verb = 'v';
};

std::string pad(std::string s, const Spec& sp, bool numeric = false) {
  if (sp.width < 0) return s;
  const size_t n = rune_count(s);
  const auto w = static_cast<size_t>(sp.width);
  if (n >= w) return s;
  const size_t fill = w - n;
  if (sp.minus) return s + std::string(fill, ' ');
  if (sp.zero) {
    size_t at = 0;
    if (numeric && !s.empty() && (s[0] == '-' || s[0] == '+' || s[0] == ' ')) at = 1;
    s.insert(at, std::string(fill, '0'));
    return s;
  }
  return std::string(fill, ' ') + s;
}

std::string quote_rune(uint32_t r, bool ascii_only) {
  std::string out = "'";
  if (r == '\'') {
    out += "\\'";
  } else if (r == '"') {
    out += '"';
  } else {
    std::string q = go_quote(encode_rune(r), ascii_only);
    out += q.substr(1, q.size() - 2);
  }
  return out + "'";
}

std::string bad_verb(const Value& v, char verb) {
  std::string out = "%!";
  out += verb;
  out += '(';
  if (v.is_invalid() || v.is_nil()) {
    out += "<nil>";
  } else {
    out += v.type_name() + "=" + format_value(v, false, true);
  }
  return out + ")";
}

std::string fmt_integer(int64_t i, const Spec& sp) {
  const bool neg = i < 0;
  uint64_t u = neg ? ~static_cast<uint64_t>(i) + 1 : static_cast<uint64_t>(i);
  int base = 10;
  const char* digits = "0123456789abcdefx";
  switch (sp.verb) {
    case 'b':
      base = 2;
      break;
    case 'o':
    case 'O':
      base = 8;
      break;
    case 'x':
      base = 16;
      break;
    case 'X':
      base = 16;
      digits = "0123456789ABCDEFX";
      break;
    default:
      break;
  }
  std::string body;
  if (!(u == 0 && sp.prec == 0)) {
    do {
      body.insert(body.begin(), digits[u % static_cast<uint64_t>(base)]);
      u /= static_cast<uint64_t>(base);
    } while (u);
  }
  int prec = sp.prec;
  if (prec < 0 && sp.zero && sp.width > 0 && !sp.minus) {
    prec = sp.width - ((neg || sp.plus || sp.space) ? 1 : 0);
    if (sp.sharp && base == 16) prec -= 2;
  }
  while (prec >= 0 && static_cast<int>(body.size()) < prec) body.insert(body.begin(), '0');
  if (sp.sharp) {
    if (base == 8 && (body.empty() || body[0] != '0')) body.insert(0, "0");
    if (base == 16) body.insert(0, sp.verb == 'X' ? "0X" : "0x");
    if (base == 2) body.insert(0, "0b");
  }
  if (sp.verb == 'O') body.insert(0, "0o");
  if (neg) {
    body.insert(body.begin(), '-');
  } else if (sp.plus) {
    body.insert(body.begin(), '+');
  } else if (sp.space) {
    body.insert(body.begin(), ' ');
  }
  Spec no_zero = sp;
  no_zero.zero = false;
  return pad(body, no_zero);
}

std::string fmt_float(double f, const Spec& sp) {
  char verb = sp.verb == 'v' ? 'g' : sp.verb;
  std::string s;
  if (std::isnan(f) || std::isinf(f)) {
    s = std::isnan(f) ? "NaN" : (f > 0 ? "+Inf" : "-Inf");
    if (std::isnan(f) && sp.plus) s = "+NaN";
    if (std::isinf(f) && f > 0 && !sp.plus) s = sp.space ? " Inf" : "+Inf";
    if (sp.verb == 'v' && std::isinf(f) && f > 0 && !sp.plus && !sp.space) s = "+Inf";
    Spec no_zero = sp;
    no_zero.zero = false;
    return pad(s, no_zero);
  }
  if ((verb == 'g' || verb == 'G') && sp.prec < 0) {
    s = format_float_shortest(f);
    if (verb == 'G') {
      for (char& c : s) c = c == 'e' ? 'E' : c;
    }
  } else {
    const int prec = sp.prec < 0 ? 6 : sp.prec;
    char fmtbuf[8] = {'%', '.', '*', verb == 'F' ? 'f' : verb, 0};
    char buf[512];
    std::snprintf(buf, sizeof buf, fmtbuf, prec, f);
    s = buf;
    if (sp.sharp && s.find('.') == std::string::npos) s += '.';
  }
  if (sp.plus && s[0] != '-') {
    s.insert(s.begin(), '+');
  } else if (sp.space && s[0] != '-') {
    s.insert(s.begin(), ' ');
  }
  return pad(s, sp, true);
}

std::string fmt_string(const std::string& str, const Spec& sp) {
  std::string s = str;
  if (sp.prec >= 0) {
    size_t p = 0;
    for (int n = 0; n < sp.prec && p < s.size(); ++n) decode_rune(s, p);
    s = s.substr(0, p);
  }
  switch (sp.verb) {
    case 'v':
    case 's':
      return pad(s, sp);
    case 'q':
      if (sp.sharp && s.find('`') == std::string::npos) {
        bool ok = true;
        for (size_t p = 0; p < s.size();) {
          const uint32_t r = decode_rune(s, p);
          if ((r < 0x20 && r != '\t') || r == 0x7f || r == 0xFEFF || r == 0xFFFD) ok = false;
        }
        if (ok) return pad("`" + s + "`", sp);
      }
      return pad(go_quote(s, sp.plus), sp);
    case 'x':
    case 'X': {
      const char* digits = sp.verb == 'x' ? "0123456789abcdef" : "0123456789ABCDEF";
      std::string out;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i && sp.space) out += ' ';
        if (sp.sharp && (i == 0 || sp.space)) out += sp.verb == 'x' ? "0x" : "0X";
        const auto c = static_cast<unsigned char>(s[i]);
        out += digits[c >> 4];
        out += digits[c & 15];
      }
      return pad(out, sp);
    }
    default:
      return "";
  }
}

std::string fmt_value(const Value& v, const Spec& sp, int depth);

std::string fmt_composite(const Value& v, const Spec& sp, int depth) {
  Spec inner = sp;
  std::string out;
  switch (v.kind()) {
    case Kind::kList:
      out = "[";
      for (size_t i = 0; i < v.items().size(); ++i) {
        if (i) out += ' ';
        out += fmt_value(v.items()[i], inner, depth + 1);
      }
      return out + "]";
    case Kind::kMap: {
      out = "map[";
      bool first = true;
      for (const auto& [key, value] : v.entries()) {
        if (!first) out += ' ';
        first = false;
        out += fmt_value(Value(key), inner, depth + 1) + ":" + fmt_value(value, inner, depth + 1);
      }
      return out + "]";
    }
    default: {
      out = depth == 0 && v.type_name().starts_with("*") ? "&{" : "{";
      bool first = true;
      for (const auto& [key, value] : v.fields()) {
        if (!first) out += ' ';
        first = false;
        if (sp.plus && sp.verb == 'v') out += key + ":";
        out += fmt_value(value, inner, depth + 1);
      }
      return out + "}";
    }
  }
}

std::string fmt_value(const Value& v, const Spec& sp, int depth) {
  const char verb = sp.verb;
  if (verb == 'T') return pad(v.is_invalid() || v.is_nil() ? "<nil>" : v.type_name(), sp);
  if (v.is_invalid() || v.is_nil()) {
    if (verb == 'v') return pad("<nil>", sp);
    return bad_verb(v, verb);
  }
  if (const std::string* text = v.text()) {
    if (verb == 'v' || verb == 's' || verb == 'x' || verb == 'X' || verb == 'q') {
      Spec s = sp;
      if (s.verb == 'v') s.verb = 's';
      return fmt_string(*text, s);
    }
  }
  switch (v.kind()) {
    case Kind::kBool:
      if (verb == 'v' || verb == 't') return pad(v.as_bool() ? "true" : "false", sp);
      return bad_verb(v, verb);
    case Kind::kInt: {
      const int64_t i = v.as_int();
      switch (verb) {
        case 'v':
        case 'd': {
          Spec s = sp;
          s.verb = 'd';
          return fmt_integer(i, s);
        }
        case 'b':
        case 'o':
        case 'O':
        case 'x':
        case 'X':
          return fmt_integer(i, sp);
        case 'c':
          return pad(encode_rune(i < 0 || i > 0x10FFFF ? 0xFFFD : static_cast<uint32_t>(i)), sp);
        case 'q':
          return pad(quote_rune(i < 0 || i > 0x10FFFF ? 0xFFFD : static_cast<uint32_t>(i), sp.plus),
                     sp);
        case 'U': {
          char buf[32];
          std::snprintf(buf, sizeof buf, "U+%04llX", static_cast<unsigned long long>(i));
          std::string s = buf;
          if (sp.sharp && i >= 0 && i <= 0x10FFFF && is_print(static_cast<uint32_t>(i))) {
            s += " '" + encode_rune(static_cast<uint32_t>(i)) + "'";
          }
          return pad(s, sp);
        }
        default:
          return bad_verb(v, verb);
      }
    }
    case Kind::kFloat:
      switch (verb) {
        case 'v':
        case 'e':
        case 'E':
        case 'f':
        case 'F':
        case 'g':
        case 'G':
          return fmt_float(v.as_float(), sp);
        default:
          return bad_verb(v, verb);
      }
    case Kind::kString:
      if (verb == 'v' || verb == 's' || verb == 'q' || verb == 'x' || verb == 'X') {
        return fmt_string(v.as_string(), sp);
      }
      return bad_verb(v, verb);
    case Kind::kList:
    case Kind::kMap:
    case Kind::kObject:
      return pad(fmt_composite(v, sp, depth), sp);
    case Kind::kFunc:
      if (verb == 'v' || verb == 'p') return pad(format_value(v), sp);
      return bad_verb(v, verb);
    default:
      return bad_verb(v, verb);
  }
}

Value normalize_fmt_arg(const Value& v) { return v.is_invalid() ? Value::nil() : v; }

}  // namespace

std::string go_quote(std::string_view s, bool ascii_only) {
  static const char* kHex = "0123456789abcdef";
  std::string out = "\"";
  for (size_t p = 0; p < s.size();) {
    size_t size = 0;
    const size_t start = p;
    const uint32_t r = decode_rune(s, p, &size);
    if (r == 0xFFFD && size == 1) {
      const auto b = static_cast<unsigned char>(s[start]);
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 15];
      continue;
    }
    if (r == '"' || r == '\\') {
      out += '\\';
      out += static_cast<char>(r);
      continue;
    }
    if (r < 0x80 ? (r >= 0x20 && r != 0x7f) : (!ascii_only && is_print(r))) {
      out.append(s.substr(start, size));
      continue;
    }
    switch (r) {
      case '\a':
        out += "\\a";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\v':
        out += "\\v";
        continue;
      default:
        break;
    }
    char buf[16];
    if (r < 0x20 || r == 0x7f) {
      std::snprintf(buf, sizeof buf, "\\x%02x", r);
    } else if (r < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", r);
    } else {
      std::snprintf(buf, sizeof buf, "\\U%08x", r);
    }
    out += buf;
  }
  return out + "\"";
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\0':
        out += "\xEF\xBF\xBD";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string js_escape(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (size_t p = 0; p < s.size();) {
    const auto c = static_cast<unsigned char>(s[p]);
    if (c < 0x80) {
      ++p;
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '\'':
          out += "\\'";
          break;
        case '"':
          out += "\\\"";
          break;
        case '<':
          out += "\\u003C";
          break;
        case '>':
          out += "\\u003E";
          break;
        case '&':
          out += "\\u0026";
          break;
        case '=':
          out += "\\u003D";
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
    const size_t start = p;
    const uint32_t r = decode_rune(s, p, &size);
    if (is_print(r)) {
      out.append(s.substr(start, size));
    } else {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u%04X", r);
      out += buf;
    }
  }
  return out;
}

std::string url_query_escape(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string sprint(std::span<const Value> args) {
  std::string out;
  bool prev_string = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const Value v = normalize_fmt_arg(args[i]);
    const bool is_string = v.kind() == Kind::kString;
    if (i > 0 && !is_string && !prev_string) out += ' ';
    out += format_value(v, false, v.is_nil());
    prev_string = is_string;
  }
  return out;
}

std::string sprintln(std::span<const Value> args) {
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (i) out += ' ';
    const Value v = normalize_fmt_arg(args[i]);
    out += format_value(v, false, v.is_nil());
  }
  return out + "\n";
}

std::string sprintf(std::string_view format, std::span<const Value> args) {
  std::string out;
  size_t arg = 0;
  size_t i = 0;
  const size_t n = format.size();
  while (i < n) {
    const size_t pct = format.find('%', i);
    if (pct == std::string_view::npos) {
      out.append(format.substr(i));
      break;
    }
    out.append(format.substr(i, pct - i));
    i = pct + 1;
    Spec sp;
    for (; i < n; ++i) {
      const char c = format[i];
      if (c == '-') {
        sp.minus = true, sp.zero = false;
      } else if (c == '+') {
        sp.plus = true;
      } else if (c == '#') {
        sp.sharp = true;
      } else if (c == ' ') {
        sp.space = true;
      } else if (c == '0') {
        sp.zero = !sp.minus;
      } else {
        break;
      }
    }
    auto read_num = [&](int& target) {
      const char* bad = &target == &sp.width ? "%!(BADWIDTH)" : "%!(BADPREC)";
      if (i < n && format[i] == '*') {
        ++i;
        if (arg >= args.size()) {
          out += bad;
          return;
        }
        const Value& a = args[arg++];
        // Go's fmt refuses a width or precision argument beyond a million (tooLarge), so a
        // template cannot make it pad to gigabytes.
        if (a.kind() != Kind::kInt || a.as_int() > 1000000 || a.as_int() < -1000000) {
          if (&target == &sp.prec) target = -1;
          out += bad;
          return;
        }
        target = static_cast<int>(a.as_int());
        if (target < 0 && &target == &sp.prec) {
          target = -1;
          out += bad;
          return;
        }
        if (target < 0 && &target == &sp.width) {
          sp.minus = true, sp.zero = false;
          target = -target;
        }
        return;
      }
      if (i < n && format[i] >= '0' && format[i] <= '9') {
        target = 0;
        while (i < n && format[i] >= '0' && format[i] <= '9') {
          target = std::min(target * 10 + (format[i] - '0'), 1000000);
          ++i;
        }
      }
    };
    read_num(sp.width);
    if (i < n && format[i] == '.') {
      ++i;
      sp.prec = 0;
      read_num(sp.prec);
      if (sp.prec < 0) sp.prec = -1;
    }
    if (i >= n) {
      out += "%!(NOVERB)";
      break;
    }
    size_t vpos = i;
    const uint32_t verb = decode_rune(format, vpos);
    i = vpos;
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (arg >= args.size()) {
      out += "%!" + encode_rune(verb) + "(MISSING)";
      continue;
    }
    sp.verb = verb < 0x80 ? static_cast<char>(verb) : '?';
    const Value v = normalize_fmt_arg(args[arg++]);
    if (verb >= 0x80) {
      out +=
          "%!" + encode_rune(verb) + "(" + v.type_name() + "=" + format_value(v, false, true) + ")";
      continue;
    }
    out += fmt_value(v, sp, 0);
  }
  if (arg < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = arg; k < args.size(); ++k) {
      if (k > arg) out += ", ";
      const Value v = normalize_fmt_arg(args[k]);
      if (v.is_nil()) {
        out += "<nil>";
      } else {
        out += v.type_name() + "=" + format_value(v, false, true);
      }
    }
    out += ")";
  }
  return out;
}

bool is_builtin(std::string_view name) {
  static const std::string_view kNames[] = {
      "and", "call", "eq",  "ge", "gt",    "html",   "index",   "js",    "le",      "len",
      "lt",  "ne",   "not", "or", "print", "printf", "println", "slice", "urlquery"};
  for (std::string_view n : kNames) {
    if (n == name) return true;
  }
  return false;
}

void builtin_arity(std::string_view name, int& min_args, int& max_args) {
  min_args = 0;
  max_args = -1;
  if (name == "not" || name == "len") {
    min_args = max_args = 1;
  } else if (name == "ne" || name == "lt" || name == "le" || name == "gt" || name == "ge") {
    min_args = max_args = 2;
  } else if (name == "and" || name == "or" || name == "index" || name == "slice" || name == "eq" ||
             name == "call" || name == "printf") {
    min_args = 1;
  }
}

Value call_builtin(std::string_view name, std::span<const Value> args) {
  if (name == "not") return Value(!args[0].truthy());
  if (name == "len") {
    const Value& v = args[0];
    if (v.is_invalid() || v.is_nil()) fail("len of nil pointer");
    const int64_t n = v.length();
    if (n < 0) fail("len of type " + v.type_name());
    return Value(n);
  }
  if (name == "index") return index(args);
  if (name == "slice") return slice(args);
  if (name == "eq") return Value(eq(args));
  if (name == "ne") return Value(!eq(args));
  if (name == "lt") return Value(lt(args[0], args[1]));
  if (name == "le") return Value(lt(args[0], args[1]) || eq(args));
  if (name == "gt") return Value(!(lt(args[0], args[1]) || eq(args)));
  if (name == "ge") return Value(!lt(args[0], args[1]));
  if (name == "print") return Value(sprint(args));
  if (name == "println") return Value(sprintln(args));
  if (name == "printf") return Value(sprintf(args[0].as_string(), args.subspan(1)));
  if (name == "html") return Value(html_escape(eval_args(args)));
  if (name == "js") return Value(js_escape(eval_args(args)));
  if (name == "urlquery") return Value(url_query_escape(eval_args(args)));
  if (name == "call") {
    const Value& fn = args[0];
    if (fn.is_invalid() || fn.is_nil()) fail("call of nil");
    if (fn.kind() != Kind::kFunc) fail("non-function of type " + fn.type_name());
    if (!fn.function()) fail("call of nil");
    return fn.function()(args.subspan(1));
  }
  fail("unknown function " + std::string(name));
}

}  // namespace corral::tmpl::gotmpl
