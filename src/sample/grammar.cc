// GBNF parsing: llama.cpp's grammar notation (grammars/README.md there) compiled into the flat
// rule form of grammar_impl.h.
//
// Accepted: `name ::= alternatives` (a rule may span lines; a new rule starts where a line
// begins with `name ::=`), literals "..." with \n \r \t \\ \" \xHH \uHHHH \UHHHHHHHH escapes,
// classes [a-z] [^"\\], `.` (any character), groups ( ), repetition * + ? {m} {m,} {m,n},
// `#` comments. Repetitions become right-recursive helper rules, the way llama.cpp expands them,
// so the matcher's stacks stay flat however long a repetition runs.
#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "sample/grammar.h"
#include "sample/grammar_impl.h"

namespace corral::sample {

namespace {

using Kind = Grammar::Impl::Kind;
using Element = Grammar::Impl::Element;
using Sequence = std::vector<Element>;

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
// Hostile input must fail fast: parenthesis nesting (the parser recurses on it), repetition
// counts and the total size of the expanded grammar are bounded.
constexpr int kMaxNesting = 256;
constexpr int64_t kMaxRepetition = 10000;
constexpr size_t kMaxElements = size_t{1} << 21;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

struct RuleDef {
  std::string name;
  std::vector<Sequence> alternatives;
  bool defined = false;
  size_t first_use = 0;  // source offset of the first reference (for "undefined rule")
};

class Parser {
 public:
  explicit Parser(std::string_view src) : src_(src) {}

  std::unique_ptr<Grammar::Impl> parse(std::string_view root_name) {
    for (;;) {
      skip_space(true);
      if (pos_ >= src_.size()) break;
      const size_t start = pos_;
      const std::string name = parse_name();
      skip_space(false);
      if (src_.substr(pos_, 3) != "::=")
        fail(pos_, "expected '::=' after rule name '" + name + "'");
      pos_ += 3;
      const int32_t id = rule_id(name, start);
      if (rules_[id].defined) fail(start, "rule '" + name + "' is defined twice");
      rules_[id].defined = true;
      std::vector<Sequence> alternatives = parse_alternatives(id, 0);
      rules_[id].alternatives = std::move(alternatives);
      skip_space(false);
      if (pos_ < src_.size() && src_[pos_] == ')') fail(pos_, "unmatched ')'");
    }
    for (const RuleDef& rule : rules_) {
      if (!rule.defined) fail(rule.first_use, "undefined rule '" + rule.name + "'");
    }
    const auto root = ids_.find(std::string(root_name));
    if (root == ids_.end()) {
      throw std::invalid_argument("grammar: no rule named '" + std::string(root_name) + "'");
    }
    check_left_recursion();
    return flatten(root->second);
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& message) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at && i < src_.size(); ++i) {
      if (src_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw std::invalid_argument("grammar line " + std::to_string(line) + " column " +
                                std::to_string(col) + ": " + message);
  }

  void skip_space(bool newlines) {
    while (pos_ < src_.size()) {
      const char c = src_[pos_];
      if (c == ' ' || c == '\t' || c == '\r' || (newlines && c == '\n')) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  // Whether `name ::=` starts at p (a rule ends where the next one begins).
  bool at_rule_start(size_t p) const {
    const size_t start = p;
    while (p < src_.size() && is_name_char(src_[p])) ++p;
    if (p == start) return false;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t')) ++p;
    return src_.substr(p, 3) == "::=";
  }

  std::string parse_name() {
    const size_t start = pos_;
    while (pos_ < src_.size() && is_name_char(src_[pos_])) ++pos_;
    if (pos_ == start) fail(start, "expected a rule name");
    return std::string(src_.substr(start, pos_ - start));
  }

  int32_t rule_id(const std::string& name, size_t at) {
    const auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    const auto id = static_cast<int32_t>(rules_.size());
    RuleDef rule;
    rule.name = name;
    rule.first_use = at;
    rules_.push_back(std::move(rule));
    ids_.emplace(name, id);
    return id;
  }

  int32_t new_helper_rule(int32_t parent) {
    const std::string base = rules_[parent].name;
    std::string name;
    do {
      name = base + "-" + std::to_string(++helper_count_);
    } while (ids_.count(name));
    const int32_t id = rule_id(name, pos_);
    rules_[id].defined = true;
    return id;
  }

  void count(size_t n) {
    total_ += n;
    if (total_ > kMaxElements) {
      fail(pos_, "grammar too large (more than " + std::to_string(kMaxElements) +
                     " elements once repetitions are expanded)");
    }
  }

  std::vector<Sequence> parse_alternatives(int32_t rule, int depth) {
    if (depth > kMaxNesting) fail(pos_, "groups nested too deeply");
    std::vector<Sequence> alternatives;
    alternatives.push_back(parse_sequence(rule, depth));
    for (;;) {
      skip_space(true);
      if (pos_ >= src_.size() || src_[pos_] != '|') break;
      ++pos_;
      alternatives.push_back(parse_sequence(rule, depth));
    }
    return alternatives;
  }

  Sequence parse_sequence(int32_t rule, int depth) {
    Sequence seq;
    for (;;) {
      skip_space(true);
      if (pos_ >= src_.size()) break;
      const char c = src_[pos_];
      if (c == '|' || c == ')') break;
      if (at_rule_start(pos_)) {
        if (depth > 0) fail(pos_, "expected ')' before the next rule");
        break;
      }
      const size_t item_start = seq.size();
      const size_t at = pos_;
      if (c == '"') {
        ++pos_;
        for (;;) {
          if (pos_ >= src_.size()) fail(at, "unterminated string literal");
          if (src_[pos_] == '"') break;
          const uint32_t cp = parse_char(at);
          seq.push_back({Kind::kChars, char_class({{cp, cp}}, false)});
        }
        ++pos_;
      } else if (c == '[') {
        seq.push_back({Kind::kChars, parse_class()});
      } else if (c == '.') {
        ++pos_;
        seq.push_back({Kind::kChars, char_class({{0, kMaxCodePoint}}, false)});
      } else if (c == '(') {
        ++pos_;
        const int32_t group = new_helper_rule(rule);
        std::vector<Sequence> alternatives = parse_alternatives(group, depth + 1);
        skip_space(true);
        if (pos_ >= src_.size() || src_[pos_] != ')') fail(at, "unmatched '('");
        ++pos_;
        rules_[group].alternatives = std::move(alternatives);
        seq.push_back({Kind::kRef, group});
      } else if (is_name_char(c)) {
        const std::string name = parse_name();
        seq.push_back({Kind::kRef, rule_id(name, at)});
      } else {
        fail(pos_, std::string("unexpected character '") + c + "'");
      }
      count(seq.size() - item_start);
      parse_repetitions(rule, seq, item_start);
    }
    count(1);
    return seq;
  }

  void parse_repetitions(int32_t rule, Sequence& seq, size_t item_start) {
    for (;;) {
      if (pos_ >= src_.size()) return;
      const char c = src_[pos_];
      int64_t min = 0, max = -1;
      if (c == '*') {
        ++pos_;
      } else if (c == '+') {
        ++pos_;
        min = 1;
      } else if (c == '?') {
        ++pos_;
        max = 1;
      } else if (c == '{') {
        const size_t at = pos_++;
        skip_space(false);
        min = parse_count(at);
        skip_space(false);
        max = min;
        if (pos_ < src_.size() && src_[pos_] == ',') {
          ++pos_;
          skip_space(false);
          max = (pos_ < src_.size() && src_[pos_] == '}') ? -1 : parse_count(at);
          skip_space(false);
        }
        if (pos_ >= src_.size() || src_[pos_] != '}') fail(at, "expected '}' after repetition");
        ++pos_;
        if (max >= 0 && max < min) fail(at, "repetition maximum below minimum");
      } else {
        return;
      }
      repeat(rule, seq, item_start, min, max);
    }
  }

  int64_t parse_count(size_t at) {
    const size_t start = pos_;
    int64_t n = 0;
    while (pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '9') {
      n = n * 10 + (src_[pos_++] - '0');
      if (n > kMaxRepetition) {
        fail(at, "repetition count above " + std::to_string(kMaxRepetition));
      }
    }
    if (pos_ == start) fail(pos_, "expected a number in repetition");
    return n;
  }

  // Replaces seq[item_start..] by item{min,max} (max -1: unbounded).
  void repeat(int32_t rule, Sequence& seq, size_t item_start, int64_t min, int64_t max) {
    Sequence item(seq.begin() + static_cast<ptrdiff_t>(item_start), seq.end());
    seq.resize(item_start);
    if (item.empty()) fail(pos_, "repetition of nothing");
    if (item.size() > 1 && (min > 1 || max != 1)) {
      // Repeat one reference rather than copies of a long literal.
      const int32_t wrapped = new_helper_rule(rule);
      rules_[wrapped].alternatives = {item};
      item = {{Kind::kRef, wrapped}};
    }
    const int64_t copies = std::max<int64_t>(min, max) + 1;
    count(static_cast<size_t>(copies) * (item.size() + 2));
    for (int64_t i = 0; i < min; ++i) seq.insert(seq.end(), item.begin(), item.end());
    if (max < 0) {
      // many ::= item many | (empty)
      const int32_t many = new_helper_rule(rule);
      Sequence more = item;
      more.push_back({Kind::kRef, many});
      rules_[many].alternatives = {std::move(more), {}};
      seq.push_back({Kind::kRef, many});
    } else if (max > min) {
      // up to k more: opt_k ::= item opt_{k-1} | (empty)
      int32_t inner = new_helper_rule(rule);
      rules_[inner].alternatives = {item, {}};
      for (int64_t k = max - min - 1; k > 0; --k) {
        const int32_t outer = new_helper_rule(rule);
        Sequence more = item;
        more.push_back({Kind::kRef, inner});
        rules_[outer].alternatives = {std::move(more), {}};
        inner = outer;
      }
      seq.push_back({Kind::kRef, inner});
    }
  }

  uint32_t parse_hex(size_t digits, size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < digits; ++i) {
      if (pos_ >= src_.size()) fail(at, "truncated escape");
      const char c = src_[pos_++];
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        fail(pos_ - 1, "expected a hex digit in escape");
      }
      v = v * 16 + static_cast<uint32_t>(d);
    }
    if (v > kMaxCodePoint) fail(at, "escape beyond U+10FFFF");
    return v;
  }

  // One character of a literal or class: a UTF-8 sequence or an escape.
  uint32_t parse_char(size_t literal_start) {
    const size_t at = pos_;
    const auto c = static_cast<unsigned char>(src_[pos_]);
    if (c == '\\') {
      ++pos_;
      if (pos_ >= src_.size()) fail(literal_start, "unterminated escape");
      const char e = src_[pos_++];
      switch (e) {
        case 'n':
          return '\n';
        case 'r':
          return '\r';
        case 't':
          return '\t';
        case 'x':
          return parse_hex(2, at);
        case 'u':
          return parse_hex(4, at);
        case 'U':
          return parse_hex(8, at);
        case '\\':
        case '"':
        case '\'':
        case '[':
        case ']':
        case '-':
        case '^':
        case '/':
          return static_cast<unsigned char>(e);
        default:
          fail(at, std::string("unknown escape '\\") + e + "'");
      }
    }
    if (c < 0x80) {
      ++pos_;
      return c;
    }
    size_t n;
    uint32_t v;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      v = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      v = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      v = c & 0x07;
    } else {
      fail(at, "invalid UTF-8");
    }
    ++pos_;
    for (size_t i = 0; i < n; ++i) {
      if (pos_ >= src_.size() || (static_cast<unsigned char>(src_[pos_]) & 0xC0) != 0x80) {
        fail(at, "invalid UTF-8");
      }
      v = (v << 6) | (static_cast<unsigned char>(src_[pos_++]) & 0x3F);
    }
    if (v > kMaxCodePoint) fail(at, "invalid UTF-8");
    return v;
  }

  int32_t parse_class() {
    const size_t at = pos_++;
    bool negated = false;
    if (pos_ < src_.size() && src_[pos_] == '^') {
      negated = true;
      ++pos_;
    }
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    for (;;) {
      if (pos_ >= src_.size()) fail(at, "unterminated character class");
      if (src_[pos_] == ']') break;
      const uint32_t lo = parse_char(at);
      uint32_t hi = lo;
      if (pos_ + 1 < src_.size() && src_[pos_] == '-' && src_[pos_ + 1] != ']') {
        ++pos_;
        hi = parse_char(at);
        if (hi < lo) fail(at, "character range out of order");
      }
      ranges.emplace_back(lo, hi);
    }
    ++pos_;
    return char_class(std::move(ranges), negated);
  }

  int32_t char_class(std::vector<std::pair<uint32_t, uint32_t>> ranges, bool negated) {
    std::sort(ranges.begin(), ranges.end());
    std::vector<std::pair<uint32_t, uint32_t>> merged;
    for (const auto& r : ranges) {
      if (!merged.empty() && r.first <= merged.back().second + 1) {
        merged.back().second = std::max(merged.back().second, r.second);
      } else {
        merged.push_back(r);
      }
    }
    if (negated) {
      std::vector<std::pair<uint32_t, uint32_t>> complement;
      uint32_t next = 0;
      for (const auto& r : merged) {
        if (r.first > next) complement.emplace_back(next, r.first - 1);
        next = r.second + 1;
      }
      if (next <= kMaxCodePoint) complement.emplace_back(next, kMaxCodePoint);
      merged = std::move(complement);
    }
    const auto found = class_ids_.find(merged);
    if (found != class_ids_.end()) return found->second;
    CharClass cls;
    cls.ranges = merged;
    for (uint32_t c = 0; c < 128; ++c) {
      for (const auto& r : merged) {
        if (r.first <= c && c <= r.second) cls.ascii[c >> 6] |= uint64_t{1} << (c & 63);
      }
    }
    const auto id = static_cast<int32_t>(classes_.size());
    classes_.push_back(std::move(cls));
    class_ids_.emplace(std::move(merged), id);
    return id;
  }

  // A rule that can reach itself without consuming a character would make the matcher expand
  // forever; reject it here with the cycle named.
  void check_left_recursion() const {
    const size_t n = rules_.size();
    std::vector<char> nullable(n, 0);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const Sequence& alt : rules_[r].alternatives) {
          const bool all = std::all_of(alt.begin(), alt.end(), [&](const Element& e) {
            return e.kind == Kind::kRef && nullable[static_cast<size_t>(e.value)];
          });
          if (all) {
            nullable[r] = 1;
            changed = true;
            break;
          }
        }
      }
    }
    std::vector<std::vector<int32_t>> first(n);  // rules a rule may begin with
    for (size_t r = 0; r < n; ++r) {
      for (const Sequence& alt : rules_[r].alternatives) {
        for (const Element& e : alt) {
          if (e.kind != Kind::kRef) break;
          first[r].push_back(e.value);
          if (!nullable[static_cast<size_t>(e.value)]) break;
        }
      }
    }
    // Iterative depth-first search (a grammar may have many thousands of rules).
    std::vector<char> color(n, 0);  // 0 new, 1 on the path, 2 done
    std::vector<std::pair<int32_t, size_t>> path;
    for (size_t start = 0; start < n; ++start) {
      if (color[start]) continue;
      path.emplace_back(static_cast<int32_t>(start), 0);
      color[start] = 1;
      while (!path.empty()) {
        auto& [rule, next] = path.back();
        if (next == first[static_cast<size_t>(rule)].size()) {
          color[static_cast<size_t>(rule)] = 2;
          path.pop_back();
          continue;
        }
        const int32_t to = first[static_cast<size_t>(rule)][next++];
        if (color[static_cast<size_t>(to)] == 1) {
          std::string cycle;
          bool on = false;
          for (const auto& step : path) {
            on = on || step.first == to;
            if (on) cycle += "'" + rules_[static_cast<size_t>(step.first)].name + "' -> ";
          }
          cycle += "'" + rules_[static_cast<size_t>(to)].name + "'";
          throw std::invalid_argument(
              "grammar: left recursion (a rule reaches itself without consuming input, e.g. a "
              "repetition of something that may be empty): " +
              cycle);
        }
        if (color[static_cast<size_t>(to)] == 0) {
          color[static_cast<size_t>(to)] = 1;
          path.emplace_back(to, 0);
        }
      }
    }
  }

  std::unique_ptr<Grammar::Impl> flatten(int32_t root) {
    auto impl = std::make_unique<Grammar::Impl>();
    impl->root = root;
    impl->classes = std::move(classes_);
    impl->alternatives.resize(rules_.size());
    impl->elements.reserve(total_ + rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      impl->rule_names.push_back(rules_[r].name);
      for (const Sequence& alt : rules_[r].alternatives) {
        impl->alternatives[r].push_back(static_cast<int32_t>(impl->elements.size()));
        impl->elements.insert(impl->elements.end(), alt.begin(), alt.end());
        impl->elements.push_back({Kind::kEnd, 0});
      }
    }
    return impl;
  }

  std::string_view src_;
  size_t pos_ = 0;
  size_t total_ = 0;
  int helper_count_ = 0;
  std::vector<RuleDef> rules_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<CharClass> classes_;
  std::map<std::vector<std::pair<uint32_t, uint32_t>>, int32_t> class_ids_;
};

// Any JSON object. Whitespace is one space or a newline with up to 20 spaces/tabs of indent
// between tokens and none after the closing brace, so the sequence ends as soon as the object
// does. \u escapes are limited to valid surrogate pairs so every output parses.
constexpr std::string_view kJsonObjectGbnf = R"(
root   ::= object
value  ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ws ( member ( "," ws member )* )? "}"
member ::= string ws ":" ws value ws
array  ::= "[" ws ( value ws ( "," ws value ws )* )? "]"
string ::= "\"" char* "\""
char   ::= [^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" unicode )
unicode ::= [0-9a-cA-Ce-fE-F] hex hex hex | [dD] [0-7] hex hex
          | [dD] [89abAB] hex hex "\\u" [dD] [c-fC-F] hex hex
hex    ::= [0-9a-fA-F]
number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
ws     ::= ( " " | "\n" [ \t]{0,20} )?
)";

}  // namespace

Grammar::Grammar(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Grammar::~Grammar() = default;

std::shared_ptr<const Grammar> Grammar::parse(std::string_view gbnf, std::string_view root) {
  return std::make_shared<const Grammar>(Parser(gbnf).parse(root));
}

std::shared_ptr<const Grammar> Grammar::json_object() {
  static const std::shared_ptr<const Grammar> grammar = parse(kJsonObjectGbnf);
  return grammar;
}

}  // namespace corral::sample
