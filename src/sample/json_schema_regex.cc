// JSON schema `pattern` -> GBNF (see json_schema_regex.h for the subset).
#include "sample/json_schema_regex.h"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "tokenizer/pretokenize.h"

namespace corral::sample {

namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

constexpr int kMaxNesting = 100;
constexpr int kMaxCount = 10000;

// How a character appears inside a GBNF class.
std::string class_char(uint32_t cp) {
  static const char* kHex = "0123456789ABCDEF";
  if (cp < 0x20 || cp == 0x7F) return std::string("\\x") + kHex[cp >> 4] + kHex[cp & 15];
  if (cp == '\\' || cp == ']' || cp == '-' || cp == '^' || cp == '[') {
    return std::string("\\") + static_cast<char>(cp);
  }
  std::string out;
  tokenizer::utf8_append(out, cp);
  return out;
}

bool contains(const Ranges& ranges, uint32_t cp) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [&](const auto& r) { return r.first <= cp && cp <= r.second; });
}

// The GBNF literal of the JSON text that writes character cp inside a string.
std::string json_char_literal(uint32_t cp) {
  switch (cp) {
    case '"':
      return R"("\\\"")";
    case '\\':
      return R"("\\\\")";
    case '\n':
      return R"("\\n")";
    case '\t':
      return R"("\\t")";
    case '\r':
      return R"("\\r")";
    default:
      break;
  }
  if (cp < 0x20) {
    static const char* kHex = "0123456789abcdef";
    return std::string(R"("\\u00)") + kHex[cp >> 4] + kHex[cp & 15] + "\"";
  }
  return "\"" + class_char(cp) + "\"";
}

class RegexConverter {
 public:
  explicit RegexConverter(std::string_view pattern) : p_(pattern) {}

  std::string convert() {
    if (pos_ < p_.size() && p_[pos_] == '^') ++pos_;
    std::string out = alternatives(0);
    if (pos_ < p_.size()) fail("unmatched ')'");
    return out.empty() ? "\"\"" : out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw std::invalid_argument("JSON schema: pattern '" + std::string(p_) + "' at offset " +
                                std::to_string(pos_) + ": " + what);
  }

  bool at_end_anchor() const { return pos_ + 1 == p_.size() && p_[pos_] == '$'; }

  std::string alternatives(int depth) {
    if (depth > kMaxNesting) fail("groups nested too deeply");
    std::string out = sequence(depth);
    while (pos_ < p_.size() && p_[pos_] == '|') {
      ++pos_;
      out += " | " + sequence(depth);
    }
    return out;
  }

  std::string sequence(int depth) {
    std::string out;
    while (pos_ < p_.size() && p_[pos_] != '|' && p_[pos_] != ')') {
      if (at_end_anchor()) {
        ++pos_;
        break;
      }
      std::string item = atom(depth);
      item = quantified(std::move(item));
      out += (out.empty() ? "" : " ") + item;
    }
    return out.empty() ? "\"\"" : out;
  }

  std::string quantified(std::string item) {
    for (;;) {
      if (pos_ >= p_.size()) return item;
      const char c = p_[pos_];
      std::string suffix;
      if (c == '*' || c == '+' || c == '?') {
        ++pos_;
        suffix = std::string(1, c);
      } else if (c == '{' && pos_ + 1 < p_.size() && p_[pos_ + 1] >= '0' && p_[pos_ + 1] <= '9') {
        const size_t close = p_.find('}', pos_);
        if (close == std::string_view::npos) fail("unterminated {m,n}");
        std::string_view body = p_.substr(pos_ + 1, close - pos_ - 1);
        const size_t comma = body.find(',');
        const int min = number(body.substr(0, comma));
        int max = min;
        if (comma != std::string_view::npos) {
          max = comma + 1 == body.size() ? -1 : number(body.substr(comma + 1));
        }
        if (max >= 0 && max < min) fail("{m,n} with n < m");
        suffix = "{" + std::to_string(min) + (comma == std::string_view::npos ? "" : ",") +
                 (max >= 0 && comma != std::string_view::npos ? std::to_string(max) : "") + "}";
        pos_ = close + 1;
      } else {
        return item;
      }
      // Lazy and possessive forms match the same strings.
      if (pos_ < p_.size() && (p_[pos_] == '?' || p_[pos_] == '+')) ++pos_;
      item = "( " + item + " )" + suffix;
    }
  }

  int number(std::string_view digits) {
    if (digits.empty()) fail("expected a number in {m,n}");
    int n = 0;
    for (const char d : digits) {
      if (d < '0' || d > '9') fail("expected a number in {m,n}");
      n = n * 10 + (d - '0');
      if (n > kMaxCount) fail("repetition count above " + std::to_string(kMaxCount));
    }
    return n;
  }

  uint32_t next_char() {
    size_t at = pos_;
    const uint32_t cp = tokenizer::utf8_decode(p_, at);
    pos_ = at;
    return cp;
  }

  uint32_t hex(size_t digits) {
    if (pos_ + digits > p_.size()) fail("truncated escape");
    uint32_t v = 0;
    for (size_t i = 0; i < digits; ++i) {
      const char c = p_[pos_++];
      const int d = (c >= '0' && c <= '9')   ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : -1;
      if (d < 0) fail("bad hex digit in escape");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    return v;
  }

  // An escape after the backslash: fills `ranges` (and `negated` for \D \W \S) or a single
  // character.
  void escape(Ranges& ranges, bool& negated, bool in_class) {
    if (pos_ >= p_.size()) fail("pattern ends in a backslash");
    const char e = p_[pos_++];
    negated = false;
    switch (e) {
      case 'd':
      case 'D':
        ranges = {{'0', '9'}};
        negated = e == 'D';
        return;
      case 'w':
      case 'W':
        ranges = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
        negated = e == 'W';
        return;
      case 's':
      case 'S':
        ranges = {{'\t', '\r'}, {' ', ' '}};
        negated = e == 'S';
        return;
      case 'n':
        ranges = {{'\n', '\n'}};
        return;
      case 't':
        ranges = {{'\t', '\t'}};
        return;
      case 'r':
        ranges = {{'\r', '\r'}};
        return;
      case 'f':
        ranges = {{'\f', '\f'}};
        return;
      case 'v':
        ranges = {{'\v', '\v'}};
        return;
      case 'x': {
        const uint32_t v = hex(2);
        ranges = {{v, v}};
        return;
      }
      case 'u': {
        const uint32_t v = hex(4);
        ranges = {{v, v}};
        return;
      }
      case 'b':
        if (in_class) {
          ranges = {{'\b', '\b'}};
          return;
        }
        fail("word boundaries (\\b) are not supported");
      case 'B':
        fail("\\B is not supported");
      default:
        break;
    }
    if (e >= '0' && e <= '9') fail("backreferences are not supported");
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
      fail(std::string("unknown escape \\") + e);
    }
    --pos_;
    const uint32_t cp = next_char();
    ranges = {{cp, cp}};
  }

  std::string atom(int depth) {
    const char c = p_[pos_];
    if (c == '(') {
      ++pos_;
      if (pos_ < p_.size() && p_[pos_] == '?') {
        if (pos_ + 1 < p_.size() && p_[pos_ + 1] == ':') {
          pos_ += 2;
        } else {
          fail("lookaround and named groups are not supported");
        }
      }
      std::string inner = alternatives(depth + 1);
      if (pos_ >= p_.size() || p_[pos_] != ')') fail("unmatched '('");
      ++pos_;
      return "( " + inner + " )";
    }
    if (c == '[') return char_class();
    if (c == '.') {
      ++pos_;
      return R"([^"\\\x00-\x1F])";
    }
    if (c == '^' || c == '$') fail("anchors are supported only at the ends");
    if (c == '*' || c == '+' || c == '?') fail("quantifier without anything to repeat");
    if (c == '\\') {
      ++pos_;
      Ranges ranges;
      bool negated;
      escape(ranges, negated, false);
      if (!negated && ranges.size() == 1 && ranges[0].first == ranges[0].second) {
        return json_char_literal(ranges[0].first);
      }
      return emit_class(ranges, negated);
    }
    return json_char_literal(next_char());
  }

  std::string char_class() {
    ++pos_;
    bool negated = false;
    if (pos_ < p_.size() && p_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    Ranges ranges;
    bool first = true;
    for (;;) {
      if (pos_ >= p_.size()) fail("unterminated character class");
      if (p_[pos_] == ']' && !first) break;
      first = false;
      uint32_t lo;
      if (p_[pos_] == '\\') {
        ++pos_;
        Ranges sub;
        bool sub_negated;
        escape(sub, sub_negated, true);
        if (sub_negated) fail("negated escapes (\\D \\W \\S) inside a class are not supported");
        if (sub.size() != 1 || sub[0].first != sub[0].second) {
          ranges.insert(ranges.end(), sub.begin(), sub.end());
          continue;
        }
        lo = sub[0].first;
      } else {
        lo = next_char();
      }
      uint32_t hi = lo;
      if (pos_ + 1 < p_.size() && p_[pos_] == '-' && p_[pos_ + 1] != ']') {
        ++pos_;
        if (p_[pos_] == '\\') {
          ++pos_;
          Ranges sub;
          bool sub_negated;
          escape(sub, sub_negated, true);
          if (sub_negated || sub.size() != 1 || sub[0].first != sub[0].second) {
            fail("a class range must end in a single character");
          }
          hi = sub[0].first;
        } else {
          hi = next_char();
        }
        if (hi < lo) fail("class range out of order");
      }
      ranges.emplace_back(lo, hi);
    }
    ++pos_;
    return emit_class(ranges, negated);
  }

  // A class in GBNF, less the characters JSON escapes; those reachable as escapes (\" \\ \n \t
  // \r) are added back as their escape sequences.
  std::string emit_class(const Ranges& ranges, bool negated) {
    std::string cls = negated ? "[^" : "[";
    std::vector<std::string> escapes;
    for (const uint32_t special :
         {uint32_t{'"'}, uint32_t{'\\'}, uint32_t{'\n'}, uint32_t{'\t'}, uint32_t{'\r'}}) {
      if (contains(ranges, special) != negated) escapes.push_back(json_char_literal(special));
    }
    bool plain_chars = negated;
    for (const auto& [lo, hi] : ranges) {
      // Clip out control characters, '"' and '\\' (negated classes exclude them below).
      std::vector<std::pair<uint32_t, uint32_t>> parts;
      uint32_t a = std::max<uint32_t>(lo, 0x20);
      if (a > hi) continue;
      for (const uint32_t cut : {uint32_t{'"'}, uint32_t{'\\'}}) {
        if (a <= cut && cut <= hi) {
          if (a < cut) parts.emplace_back(a, cut - 1);
          a = cut + 1;
        }
      }
      if (a <= hi) parts.emplace_back(a, hi);
      for (const auto& [x, y] : parts) {
        cls += class_char(x);
        if (y > x) cls += "-" + class_char(y);
        plain_chars = true;
      }
    }
    if (negated) cls += "\"\\\\\\x00-\\x1F";
    cls += "]";
    std::vector<std::string> alts;
    if (plain_chars) alts.push_back(cls);
    alts.insert(alts.end(), escapes.begin(), escapes.end());
    if (alts.empty()) fail("a class matches nothing a JSON string can hold");
    if (alts.size() == 1) return alts[0];
    std::string out = "(";
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : " ") + alts[i];
    return out + " )";
  }

  std::string_view p_;
  size_t pos_ = 0;
};

}  // namespace

std::string regex_to_gbnf(std::string_view pattern) { return RegexConverter(pattern).convert(); }

}  // namespace corral::sample
