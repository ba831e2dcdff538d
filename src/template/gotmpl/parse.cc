// Lexer and parser of Go's text/template syntax (text/template/parse's lex.go and parse.go rules:
// trim markers, comments, keywords, chained fields, declarations, else-if/else-with chains).
#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "template/gotmpl/template.h"

namespace corral::tmpl::gotmpl {
namespace {

enum class Tok {
  kError,
  kEOF,
  kText,
  kLeftDelim,
  kRightDelim,
  kSpace,
  kIdentifier,
  kField,
  kVariable,
  kDot,
  kBool,
  kNumber,
  kCharConstant,
  kString,
  kRawString,
  kLeftParen,
  kRightParen,
  kPipe,
  kDeclare,
  kAssign,
  kChar,
  // Keywords.
  kBlock,
  kBreak,
  kContinue,
  kDefine,
  kElse,
  kEnd,
  kIf,
  kNil,
  kRange,
  kTemplate,
  kWith,
};

struct Token {
  Tok type;
  size_t pos;
  std::string val;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool is_alnum(unsigned char c) {
  return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c >= 0x80;  // letters beyond ASCII: Go accepts unicode letters in identifiers
}

Tok keyword(std::string_view w) {
  static const std::pair<std::string_view, Tok> kKeywords[] = {{"block", Tok::kBlock},
                                                               {"break", Tok::kBreak},
                                                               {"continue", Tok::kContinue},
                                                               {"define", Tok::kDefine},
                                                               {"else", Tok::kElse},
                                                               {"end", Tok::kEnd},
                                                               {"if", Tok::kIf},
                                                               {"nil", Tok::kNil},
                                                               {"range", Tok::kRange},
                                                               {"template", Tok::kTemplate},
                                                               {"with", Tok::kWith}};
  for (const auto& [word, tok] : kKeywords) {
    if (word == w) return tok;
  }
  return Tok::kIdentifier;
}

class Lexer {
 public:
  explicit Lexer(std::string_view in) : in_(in) {}

  std::vector<Token> run() {
    while (lex_text()) {
    }
    return std::move(tokens_);
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  size_t start_ = 0;
  int paren_depth_ = 0;
  std::vector<Token> tokens_;

  void emit(Tok t) {
    tokens_.push_back({t, start_, std::string(in_.substr(start_, pos_ - start_))});
    start_ = pos_;
  }
  bool error(std::string msg) {
    tokens_.push_back({Tok::kError, start_, std::move(msg)});
    return false;
  }
  bool at(std::string_view s, size_t p) const { return in_.substr(p).starts_with(s); }
  bool left_trim_marker(size_t p) const {
    return p + 1 < in_.size() && in_[p] == '-' && is_space(in_[p + 1]);
  }
  // At "}}" or " -}}": returns whether at a delimiter and sets trim.
  bool at_right_delim(bool& trim) const {
    trim =
        pos_ + 1 < in_.size() && is_space(in_[pos_]) && in_[pos_ + 1] == '-' && at("}}", pos_ + 2);
    return trim || at("}}", pos_);
  }
  void skip_space_after_trim() {
    while (pos_ < in_.size() && is_space(in_[pos_])) ++pos_;
    start_ = pos_;
  }

  // Text up to the next action; returns false at EOF or error.
  bool lex_text() {
    const size_t x = in_.find("{{", pos_);
    if (x == std::string_view::npos) {
      pos_ = in_.size();
      if (pos_ > start_) emit(Tok::kText);
      tokens_.push_back({Tok::kEOF, pos_, ""});
      return false;
    }
    const bool trim = left_trim_marker(x + 2);
    size_t end = x;
    if (trim) {
      while (end > start_ && is_space(in_[end - 1])) --end;
    }
    if (end > start_)
      tokens_.push_back({Tok::kText, start_, std::string(in_.substr(start_, end - start_))});
    start_ = pos_ = x;
    size_t after = x + 2 + (trim ? 2 : 0);
    if (at("/*", after)) return lex_comment(after);
    pos_ = x + 2;
    emit(Tok::kLeftDelim);
    pos_ = start_ = after;
    paren_depth_ = 0;
    return lex_inside_action();
  }

  bool lex_comment(size_t after) {
    const size_t close = in_.find("*/", after + 2);
    if (close == std::string_view::npos) return error("unclosed comment");
    pos_ = close + 2;
    bool trim = false;
    if (!at_right_delim(trim)) return error("comment ends before closing delimiter");
    pos_ += trim ? 4 : 2;
    start_ = pos_;
    if (trim) skip_space_after_trim();
    return true;
  }

  bool lex_inside_action() {
    for (;;) {
      bool trim = false;
      if (at_right_delim(trim)) {
        if (paren_depth_ != 0) return error("unclosed left paren");
        if (trim) pos_ += 2;
        start_ = pos_;
        pos_ += 2;
        emit(Tok::kRightDelim);
        if (trim) skip_space_after_trim();
        return true;
      }
      if (pos_ >= in_.size()) return error("unclosed action");
      const char c = in_[pos_++];
      if (is_space(c)) {
        size_t n = 1;
        while (pos_ < in_.size() && is_space(in_[pos_])) ++pos_, ++n;
        // The last space before "-}}" belongs to the trim marker.
        if (pos_ < in_.size() && in_[pos_] == '-' && at("}}", pos_ + 1)) {
          --pos_;
          if (n == 1) continue;
        }
        emit(Tok::kSpace);
      } else if (c == '=') {
        emit(Tok::kAssign);
      } else if (c == ':') {
        if (pos_ >= in_.size() || in_[pos_] != '=') return error("expected :=");
        ++pos_;
        emit(Tok::kDeclare);
      } else if (c == '|') {
        emit(Tok::kPipe);
      } else if (c == '"') {
        if (!lex_quote()) return false;
      } else if (c == '`') {
        const size_t close = in_.find('`', pos_);
        if (close == std::string_view::npos) return error("unterminated raw quoted string");
        pos_ = close + 1;
        emit(Tok::kRawString);
      } else if (c == '$') {
        if (!lex_field_or_variable(Tok::kVariable)) return false;
      } else if (c == '\'') {
        if (!lex_char()) return false;
      } else if (c == '.' && !(pos_ < in_.size() && in_[pos_] >= '0' && in_[pos_] <= '9')) {
        if (!lex_field_or_variable(Tok::kField)) return false;
      } else if (c == '.' || c == '+' || c == '-' || (c >= '0' && c <= '9')) {
        --pos_;
        if (!lex_number()) return false;
      } else if (is_alnum(static_cast<unsigned char>(c))) {
        while (pos_ < in_.size() && is_alnum(static_cast<unsigned char>(in_[pos_]))) ++pos_;
        if (!at_terminator()) return bad_character();
        const std::string_view word = in_.substr(start_, pos_ - start_);
        const Tok k = keyword(word);
        if (k != Tok::kIdentifier) {
          emit(k);
        } else if (word == "true" || word == "false") {
          emit(Tok::kBool);
        } else {
          emit(Tok::kIdentifier);
        }
      } else if (c == '(') {
        emit(Tok::kLeftParen);
        ++paren_depth_;
      } else if (c == ')') {
        if (--paren_depth_ < 0) return error("unexpected right paren");
        emit(Tok::kRightParen);
      } else if (static_cast<unsigned char>(c) < 0x80 && c >= 0x20 && c < 0x7f) {
        emit(Tok::kChar);
      } else {
        start_ = pos_ - 1;
        return error("unrecognized character in action: " + describe_rune(pos_ - 1));
      }
    }
  }

  std::string describe_rune(size_t p) const {
    size_t q = p;
    const uint32_t r = decode_rune(in_, q);
    char buf[32];
    std::snprintf(buf, sizeof buf, "U+%04X", r);
    std::string out = buf;
    if (r >= 0x20 && r != 0x7f && r != 0xFFFD) out += " '" + encode_rune(r) + "'";
    return out;
  }

  bool bad_character() {
    if (pos_ >= in_.size()) return error("unclosed action");
    return error("bad character " + describe_rune(pos_));
  }

  bool at_terminator() const {
    if (pos_ >= in_.size()) return true;
    const char c = in_[pos_];
    if (is_space(c)) return true;
    switch (c) {
      case '.':
      case ',':
      case '|':
      case ':':
      case ')':
      case '(':
        return true;
    }
    return at("}}", pos_);
  }

  bool lex_field_or_variable(Tok type) {
    if (at_terminator()) {
      emit(type == Tok::kVariable ? Tok::kVariable : Tok::kDot);
      return true;
    }
    while (pos_ < in_.size() && is_alnum(static_cast<unsigned char>(in_[pos_]))) ++pos_;
    if (!at_terminator()) return bad_character();
    emit(type);
    return true;
  }

  bool lex_quote() {
    while (pos_ < in_.size()) {
      const char c = in_[pos_++];
      if (c == '\\') {
        if (pos_ >= in_.size() || in_[pos_] == '\n') break;
        ++pos_;
      } else if (c == '\n') {
        break;
      } else if (c == '"') {
        emit(Tok::kString);
        return true;
      }
    }
    return error("unterminated quoted string");
  }

  bool lex_char() {
    while (pos_ < in_.size()) {
      const char c = in_[pos_++];
      if (c == '\\') {
        if (pos_ >= in_.size() || in_[pos_] == '\n') break;
        ++pos_;
      } else if (c == '\n') {
        break;
      } else if (c == '\'') {
        emit(Tok::kCharConstant);
        return true;
      }
    }
    return error("unterminated character constant");
  }

  bool lex_number() {
    if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
    std::string_view digits = "0123456789_";
    if (at("0x", pos_) || at("0X", pos_)) {
      pos_ += 2, digits = "0123456789abcdefABCDEF_";
    } else if (at("0o", pos_) || at("0O", pos_)) {
      pos_ += 2, digits = "01234567_";
    } else if (at("0b", pos_) || at("0B", pos_)) {
      pos_ += 2, digits = "01_";
    }
    auto run = [&](std::string_view set) {
      while (pos_ < in_.size() && set.find(in_[pos_]) != std::string_view::npos) ++pos_;
    };
    run(digits);
    if (pos_ < in_.size() && in_[pos_] == '.') ++pos_, run(digits);
    if (digits.size() == 11 && pos_ < in_.size() && (in_[pos_] == 'e' || in_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      run("0123456789_");
    }
    if (digits.size() == 23 && pos_ < in_.size() && (in_[pos_] == 'p' || in_[pos_] == 'P')) {
      ++pos_;
      if (pos_ < in_.size() && (in_[pos_] == '+' || in_[pos_] == '-')) ++pos_;
      run("0123456789_");
    }
    if (pos_ < in_.size() && is_alnum(static_cast<unsigned char>(in_[pos_]))) {
      ++pos_;
      return error("bad number syntax: \"" + std::string(in_.substr(start_, pos_ - start_)) + "\"");
    }
    emit(Tok::kNumber);
    return true;
  }
};

// Go's strconv.Unquote of a "..." or '...' literal (the lexer has checked the quotes).
bool unquote(std::string_view q, std::string& out) {
  out.clear();
  const char quote = q.front();
  std::string_view s = q.substr(1, q.size() - 2);
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == quote) return false;
    if (c != '\\') {
      out += c;
      ++i;
      continue;
    }
    if (++i >= s.size()) return false;
    const char e = s[i++];
    switch (e) {
      case 'a':
        out += '\a';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'v':
        out += '\v';
        break;
      case '\\':
        out += '\\';
        break;
      case '\'':
      case '"':
        if (e != quote) return false;
        out += e;
        break;
      case 'x':
      case 'u':
      case 'U': {
        const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (i + n > s.size()) return false;
        uint32_t v = 0;
        for (size_t k = 0; k < n; ++k) {
          const int h = hex(s[i + k]);
          if (h < 0) return false;
          v = v * 16 + static_cast<uint32_t>(h);
        }
        i += n;
        if (e == 'x') {
          out += static_cast<char>(v);
        } else {
          if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return false;
          out += encode_rune(v);
        }
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          if (i + 2 > s.size()) return false;
          uint32_t v = static_cast<uint32_t>(e - '0');
          for (size_t k = 0; k < 2; ++k) {
            if (s[i + k] < '0' || s[i + k] > '7') return false;
            v = v * 8 + static_cast<uint32_t>(s[i + k] - '0');
          }
          if (v > 255) return false;
          i += 2;
          out += static_cast<char>(v);
          break;
        }
        return false;
    }
  }
  return true;
}

// Go's strconv.ParseInt/ParseFloat of a number constant (base prefixes, underscores).
bool parse_number(std::string_view text, Arg& arg) {
  std::string t;
  for (char c : text) {
    if (c != '_') t += c;
  }
  bool neg = false;
  std::string_view body = t;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    neg = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body.empty()) return false;
  const bool has_hex = body.size() > 1 && body[0] == '0' && (body[1] == 'x' || body[1] == 'X');
  const bool floaty = has_hex ? body.find_first_of("pP.") != std::string_view::npos
                              : body.find_first_of(".eE") != std::string_view::npos;
  if (!floaty) {
    int base = 10;
    std::string_view digits = body;
    if (body.size() > 1 && body[0] == '0') {
      const char b = body[1];
      if (b == 'x' || b == 'X') {
        base = 16, digits.remove_prefix(2);
      } else if (b == 'o' || b == 'O') {
        base = 8, digits.remove_prefix(2);
      } else if (b == 'b' || b == 'B') {
        base = 2, digits.remove_prefix(2);
      } else {
        base = 8, digits.remove_prefix(1);
      }
    }
    uint64_t u = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), u, base);
    if (ec != std::errc() || p != digits.data() + digits.size() || digits.empty()) return false;
    if (u > (neg ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1)) return false;
    arg.int_value = neg ? static_cast<int64_t>(~u + 1) : static_cast<int64_t>(u);
    arg.float_value = static_cast<double>(arg.int_value);
    arg.is_float = false;
    return true;
  }
  char* end = nullptr;
  const double f = std::strtod(t.c_str(), &end);
  if (end != t.c_str() + t.size()) return false;
  arg.float_value = f;
  arg.is_float = true;
  return true;
}

std::string quote_go(std::string_view s);

struct ParseError {
  size_t pos;
  std::string msg;
};

// Nesting of blocks and parenthesized pipelines, bounded as Limits::max_depth bounds their
// execution (the parser recurses a few frames per level).
constexpr int kMaxDepth = 256;

class Parser {
 public:
  Parser(std::vector<Token> tokens, const FuncMap& funcs,
         std::map<std::string, std::vector<Node>>& defs)
      : toks_(std::move(tokens)), funcs_(funcs), defs_(defs) {}

  std::vector<Node> parse_root() {
    std::vector<Node> root;
    while (peek().type != Tok::kEOF) {
      if (peek().type == Tok::kLeftDelim) {
        const size_t save = i_;
        next();
        if (next_non_space().type == Tok::kDefine) {
          parse_definition();
          continue;
        }
        i_ = save;
      }
      Node n;
      const Ctl ctl = text_or_action(n);
      if (ctl == Ctl::kEnd || ctl == Ctl::kElse) {
        fail(n.pos, ctl == Ctl::kEnd ? "unexpected {{end}}" : "unexpected {{else}}");
      }
      root.push_back(std::move(n));
    }
    return root;
  }

 private:
  enum class Ctl { kNode, kEnd, kElse };

  std::vector<Token> toks_;
  size_t i_ = 0;
  const FuncMap& funcs_;
  std::map<std::string, std::vector<Node>>& defs_;
  std::vector<std::string> vars_{"$"};
  int range_depth_ = 0;
  int depth_ = 0;
  // The else that ended the last item list: its position and whether it is "else if"/"else with".
  Tok else_kind_ = Tok::kElse;

  [[noreturn]] void fail(size_t pos, std::string msg) { throw ParseError{pos, std::move(msg)}; }

  const Token& peek() const { return toks_[std::min(i_, toks_.size() - 1)]; }
  const Token& next() {
    const Token& t = toks_[std::min(i_, toks_.size() - 1)];
    if (i_ < toks_.size()) ++i_;
    if (t.type == Tok::kError) fail(t.pos, t.val);
    return t;
  }
  void backup() { --i_; }
  const Token& next_non_space() {
    while (peek().type == Tok::kSpace) next();
    return next();
  }
  const Token& peek_non_space() {
    while (peek().type == Tok::kSpace) next();
    if (peek().type == Tok::kError) fail(peek().pos, peek().val);
    return peek();
  }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Tok::kEOF:
        return "EOF";
      case Tok::kBlock:
      case Tok::kBreak:
      case Tok::kContinue:
      case Tok::kDefine:
      case Tok::kElse:
      case Tok::kEnd:
      case Tok::kIf:
      case Tok::kNil:
      case Tok::kRange:
      case Tok::kTemplate:
      case Tok::kWith:
        return "<" + t.val + ">";
      default:
        break;
    }
    std::string v = t.val.size() > 10 ? t.val.substr(0, 10) : t.val;
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') {
        q += '\\', q += c;
      } else if (c == '\n') {
        q += "\\n";
      } else {
        q += c;
      }
    }
    q += '"';
    return t.val.size() > 10 ? q + "..." : q;
  }
  [[noreturn]] void unexpected(const Token& t, std::string_view context) {
    fail(t.pos, "unexpected " + describe(t) + " in " + std::string(context));
  }

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser, size_t pos) : p(parser) {
      if (++p.depth_ > kMaxDepth) p.fail(pos, "max nesting depth exceeded");
    }
    ~DepthGuard() { --p.depth_; }
  };

  void parse_definition() {
    const Token& name_tok = next_non_space();
    if (name_tok.type != Tok::kString && name_tok.type != Tok::kRawString) {
      unexpected(name_tok, "define clause");
    }
    const std::string name = string_value(name_tok);
    const Token& close = next_non_space();
    if (close.type != Tok::kRightDelim) unexpected(close, "define clause");
    const std::vector<std::string> saved = vars_;
    vars_.assign({"$"});
    std::vector<Node> body;
    Node end;
    const Ctl ctl = item_list(body, end);
    if (ctl != Ctl::kEnd) fail(end.pos, "unexpected {{else}} in define clause");
    vars_ = saved;
    add_definition(name, std::move(body), name_tok.pos);
  }

  static bool is_empty_tree(const std::vector<Node>& nodes) {
    for (const Node& n : nodes) {
      if (n.type != NodeType::kText) return false;
      if (n.text.find_first_not_of(" \t\r\n") != std::string::npos) return false;
    }
    return true;
  }

  void add_definition(const std::string& name, std::vector<Node> body, size_t pos) {
    auto it = defs_.find(name);
    if (it == defs_.end() || is_empty_tree(it->second)) {
      defs_[name] = std::move(body);
      return;
    }
    if (!is_empty_tree(body))
      fail(pos, "template: multiple definition of template \"" + name + "\"");
  }

  std::string string_value(const Token& t) {
    if (t.type == Tok::kRawString) return t.val.substr(1, t.val.size() - 2);
    std::string out;
    if (!unquote(t.val, out)) fail(t.pos, "invalid syntax");
    return out;
  }

  // Parses nodes until {{end}} or {{else}} (returned, with its position in end.pos).
  Ctl item_list(std::vector<Node>& list, Node& end) {
    while (peek_non_space().type != Tok::kEOF) {
      Node n;
      const Ctl ctl = text_or_action(n);
      if (ctl != Ctl::kNode) {
        end = std::move(n);
        return ctl;
      }
      list.push_back(std::move(n));
    }
    fail(peek().pos, "unexpected EOF");
  }

  Ctl text_or_action(Node& n) {
    const Token& t = next_non_space();
    switch (t.type) {
      case Tok::kText:
        n.type = NodeType::kText;
        n.pos = t.pos;
        n.text = t.val;
        return Ctl::kNode;
      case Tok::kLeftDelim:
        return action(n);
      default:
        unexpected(t, "input");
    }
  }

  Ctl action(Node& n) {
    const Token& t = next_non_space();
    n.pos = t.pos;
    switch (t.type) {
      case Tok::kBlock:
        block_control(n);
        return Ctl::kNode;
      case Tok::kBreak:
      case Tok::kContinue: {
        const bool is_break = t.type == Tok::kBreak;
        const Token& close = next_non_space();
        const std::string what = is_break ? "{{break}}" : "{{continue}}";
        if (close.type != Tok::kRightDelim) unexpected(close, what);
        if (range_depth_ == 0) fail(n.pos, what + " outside {{range}}");
        n.type = is_break ? NodeType::kBreak : NodeType::kContinue;
        return Ctl::kNode;
      }
      case Tok::kElse: {
        // "else if" and "else with" open a nested control that shares the final {{end}}.
        const Token& k = peek_non_space();
        if (k.type == Tok::kIf || k.type == Tok::kWith) {
          else_kind_ = k.type;
          return Ctl::kElse;
        }
        const Token& close = next_non_space();
        if (close.type != Tok::kRightDelim) unexpected(close, "else");
        else_kind_ = Tok::kElse;
        return Ctl::kElse;
      }
      case Tok::kEnd: {
        const Token& close = next_non_space();
        if (close.type != Tok::kRightDelim) unexpected(close, "end");
        return Ctl::kEnd;
      }
      case Tok::kIf:
        control(n, NodeType::kIf, "if");
        return Ctl::kNode;
      case Tok::kRange:
        control(n, NodeType::kRange, "range");
        return Ctl::kNode;
      case Tok::kWith:
        control(n, NodeType::kWith, "with");
        return Ctl::kNode;
      case Tok::kTemplate:
        template_control(n);
        return Ctl::kNode;
      default:
        break;
    }
    backup();
    n.type = NodeType::kAction;
    n.pipe = pipeline("command", Tok::kRightDelim);
    return Ctl::kNode;
  }

  void control(Node& n, NodeType type, std::string_view context) {
    DepthGuard guard(*this, n.pos);
    const size_t saved_vars = vars_.size();
    n.type = type;
    n.pipe = pipeline(context, Tok::kRightDelim);
    if (type == NodeType::kRange) ++range_depth_;
    Node end;
    Ctl ctl = item_list(n.list, end);
    if (type == NodeType::kRange) --range_depth_;
    if (ctl == Ctl::kElse) {
      n.has_else = true;
      if ((type == NodeType::kIf && else_kind_ == Tok::kIf) ||
          (type == NodeType::kWith && else_kind_ == Tok::kWith)) {
        // {{else if x}} ... {{end}} is {{else}}{{if x}} ... {{end}}{{end}}.
        Node nested;
        nested.pos = peek_non_space().pos;
        next();
        control(nested, type, context);
        n.else_list.push_back(std::move(nested));
        vars_.resize(saved_vars);
        return;
      }
      if (else_kind_ != Tok::kElse)
        fail(end.pos,
             "unexpected <" + std::string(else_kind_ == Tok::kIf ? "if" : "with") + "> in else");
      ctl = item_list(n.else_list, end);
      if (ctl != Ctl::kEnd) fail(end.pos, "expected end; found {{else}}");
    }
    vars_.resize(saved_vars);
  }

  void template_control(Node& n) {
    n.type = NodeType::kTemplate;
    const Token& name_tok = next_non_space();
    if (name_tok.type != Tok::kString && name_tok.type != Tok::kRawString) {
      unexpected(name_tok, "template clause");
    }
    n.text = string_value(name_tok);
    if (peek_non_space().type != Tok::kRightDelim) {
      n.pipe = pipeline("template clause", Tok::kRightDelim);
    } else {
      next();
    }
  }

  void block_control(Node& n) {
    const Token& name_tok = next_non_space();
    if (name_tok.type != Tok::kString && name_tok.type != Tok::kRawString) {
      unexpected(name_tok, "block clause");
    }
    const std::string name = string_value(name_tok);
    n.type = NodeType::kTemplate;
    n.text = name;
    n.pipe = pipeline("block clause", Tok::kRightDelim);
    const std::vector<std::string> saved = vars_;
    vars_.assign({"$"});
    std::vector<Node> body;
    Node end;
    if (item_list(body, end) != Ctl::kEnd) fail(end.pos, "unexpected {{else}} in block clause");
    vars_ = saved;
    add_definition(name, std::move(body), name_tok.pos);
  }

  bool has_var(const std::string& name) const {
    return std::find(vars_.begin(), vars_.end(), name) != vars_.end();
  }

  std::shared_ptr<Pipe> pipeline(std::string_view context, Tok end) {
    DepthGuard guard(*this, peek().pos);
    auto pipe = std::make_shared<Pipe>();
    pipe->pos = peek_non_space().pos;
    // Declarations: $x := ..., $x = ..., and in range $i, $e := ...
    for (;;) {
      if (peek_non_space().type != Tok::kVariable) break;
      const size_t save = i_;
      const Token& v = next();
      const Token& nx = peek_non_space();
      if (nx.type == Tok::kAssign || nx.type == Tok::kDeclare) {
        pipe->is_assign = nx.type == Tok::kAssign;
        next();
        pipe->decl.push_back(v.val);
        vars_.push_back(v.val);
        break;
      }
      if (nx.type == Tok::kChar && nx.val == ",") {
        next();
        pipe->decl.push_back(v.val);
        vars_.push_back(v.val);
        if (context == "range" && pipe->decl.size() < 2) {
          const Tok t = peek_non_space().type;
          if (t == Tok::kVariable || t == Tok::kRightDelim || t == Tok::kRightParen) continue;
          fail(peek().pos, "range can only initialize variables");
        }
        fail(v.pos, "too many declarations in " + std::string(context));
      }
      i_ = save;
      break;
    }
    for (;;) {
      const Token& t = next_non_space();
      if (t.type == end) {
        check_pipeline(*pipe, context, t.pos);
        return pipe;
      }
      switch (t.type) {
        case Tok::kBool:
        case Tok::kCharConstant:
        case Tok::kDot:
        case Tok::kField:
        case Tok::kIdentifier:
        case Tok::kNumber:
        case Tok::kNil:
        case Tok::kRawString:
        case Tok::kString:
        case Tok::kVariable:
        case Tok::kLeftParen:
          backup();
          pipe->cmds.push_back(command());
          break;
        default:
          unexpected(t, context);
      }
    }
  }

  void check_pipeline(const Pipe& pipe, std::string_view context, size_t pos) {
    if (pipe.cmds.empty()) fail(pos, "missing value for " + std::string(context));
    for (size_t i = 1; i < pipe.cmds.size(); ++i) {
      switch (pipe.cmds[i].args[0].kind) {
        case ArgKind::kBool:
        case ArgKind::kDot:
        case ArgKind::kNil:
        case ArgKind::kNumber:
        case ArgKind::kString:
          fail(pipe.cmds[i].pos,
               "non executable command in pipeline stage " + std::to_string(i + 1));
        default:
          break;
      }
    }
  }

  Command command() {
    Command cmd;
    cmd.pos = peek_non_space().pos;
    for (;;) {
      peek_non_space();
      Arg a;
      if (operand(a)) cmd.args.push_back(std::move(a));
      const Token& t = next();
      if (t.type == Tok::kSpace) continue;
      if (t.type == Tok::kRightDelim || t.type == Tok::kRightParen) {
        backup();
      } else if (t.type != Tok::kPipe) {
        unexpected(t, "operand");
      }
      break;
    }
    if (cmd.args.empty()) fail(cmd.pos, "empty command");
    return cmd;
  }

  bool operand(Arg& a) {
    if (!term(a)) return false;
    if (peek().type == Tok::kField) {
      std::vector<std::string> fields;
      while (peek().type == Tok::kField) fields.push_back(next().val.substr(1));
      switch (a.kind) {
        case ArgKind::kField:
        case ArgKind::kVariable:
          a.ident.insert(a.ident.end(), fields.begin(), fields.end());
          break;
        case ArgKind::kBool:
        case ArgKind::kString:
        case ArgKind::kNumber:
        case ArgKind::kNil:
        case ArgKind::kDot:
          fail(a.pos, "unexpected . after term " + quote_go(to_string(a)));
        default: {
          Arg chain;
          chain.kind = ArgKind::kChain;
          chain.pos = a.pos;
          chain.ident = std::move(fields);
          if (a.kind == ArgKind::kPipe) {
            chain.pipe = a.pipe;
          } else {
            // Go chains any node; wrap a function name as a one-command pipeline.
            auto p = std::make_shared<Pipe>();
            p->pos = a.pos;
            Command c;
            c.pos = a.pos;
            c.args.push_back(a);
            p->cmds.push_back(std::move(c));
            chain.pipe = std::move(p);
          }
          a = std::move(chain);
        }
      }
    }
    return true;
  }

  bool term(Arg& a) {
    const Token& t = next_non_space();
    a.pos = t.pos;
    switch (t.type) {
      case Tok::kIdentifier:
        if (!is_builtin(t.val) && funcs_.find(t.val) == funcs_.end()) {
          fail(t.pos, "function \"" + t.val + "\" not defined");
        }
        a.kind = ArgKind::kIdent;
        a.ident = {t.val};
        return true;
      case Tok::kDot:
        a.kind = ArgKind::kDot;
        return true;
      case Tok::kNil:
        a.kind = ArgKind::kNil;
        return true;
      case Tok::kVariable:
        if (!has_var(t.val)) fail(t.pos, "undefined variable \"" + t.val + "\"");
        a.kind = ArgKind::kVariable;
        a.ident = {t.val};
        return true;
      case Tok::kField:
        a.kind = ArgKind::kField;
        a.ident = {t.val.substr(1)};
        return true;
      case Tok::kBool:
        a.kind = ArgKind::kBool;
        a.boolean = t.val == "true";
        return true;
      case Tok::kCharConstant: {
        std::string s;
        if (!unquote(t.val, s)) fail(t.pos, "malformed character constant: " + t.val);
        size_t p = 0;
        size_t size = 0;
        const uint32_t r = s.empty() ? 0 : decode_rune(s, p, &size);
        if (s.empty() || p != s.size()) fail(t.pos, "malformed character constant: " + t.val);
        a.kind = ArgKind::kNumber;
        a.int_value = r;
        a.float_value = r;
        a.str = t.val;
        return true;
      }
      case Tok::kNumber:
        a.kind = ArgKind::kNumber;
        a.str = t.val;
        if (!parse_number(t.val, a)) fail(t.pos, "illegal number syntax: \"" + t.val + "\"");
        return true;
      case Tok::kLeftParen: {
        a.kind = ArgKind::kPipe;
        a.pipe = pipeline("parenthesized pipeline", Tok::kRightParen);
        return true;
      }
      case Tok::kString:
      case Tok::kRawString:
        a.kind = ArgKind::kString;
        a.str = string_value(t);
        a.ident = {t.val};
        return true;
      default:
        backup();
        return false;
    }
  }
};

std::string quote_go(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\', out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

std::string to_string(const Arg& a) {
  auto join = [](const std::vector<std::string>& parts, size_t from) {
    std::string out;
    for (size_t i = from; i < parts.size(); ++i) out += "." + parts[i];
    return out;
  };
  switch (a.kind) {
    case ArgKind::kField:
      return join(a.ident, 0);
    case ArgKind::kVariable:
      return a.ident[0] + join(a.ident, 1);
    case ArgKind::kDot:
      return ".";
    case ArgKind::kNil:
      return "nil";
    case ArgKind::kBool:
      return a.boolean ? "true" : "false";
    case ArgKind::kNumber:
      return a.str;
    case ArgKind::kString:
      return a.ident.empty() ? quote_go(a.str) : a.ident[0];
    case ArgKind::kIdent:
      return a.ident[0];
    case ArgKind::kPipe:
      return "(" + to_string(*a.pipe) + ")";
    case ArgKind::kChain: {
      std::string base = to_string(*a.pipe);
      if (!(a.pipe->cmds.size() == 1 && a.pipe->cmds[0].args.size() == 1 && a.pipe->decl.empty() &&
            a.pipe->cmds[0].args[0].kind == ArgKind::kIdent)) {
        base = "(" + base + ")";
      }
      return base + join(a.ident, 0);
    }
  }
  return "";
}

std::string to_string(const Command& cmd) {
  std::string out;
  for (size_t i = 0; i < cmd.args.size(); ++i) {
    if (i) out += ' ';
    out += to_string(cmd.args[i]);
  }
  return out;
}

std::string to_string(const Pipe& pipe) {
  std::string out;
  for (size_t i = 0; i < pipe.decl.size(); ++i) {
    if (i) out += ", ";
    out += pipe.decl[i];
  }
  if (!pipe.decl.empty()) out += pipe.is_assign ? " = " : " := ";
  for (size_t i = 0; i < pipe.cmds.size(); ++i) {
    if (i) out += " | ";
    out += to_string(pipe.cmds[i]);
  }
  return out;
}

std::string error_location(const std::string& name, std::string_view text, size_t pos) {
  pos = std::min(pos, text.size());
  const std::string_view before = text.substr(0, pos);
  const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
  const size_t nl = before.rfind('\n');
  const size_t col = nl == std::string_view::npos ? pos : pos - nl - 1;
  return name + ":" + std::to_string(line) + ":" + std::to_string(col);
}

Template Template::parse(std::string_view text, std::string name, Options options) {
  Template t;
  t.text_ = std::make_shared<const std::string>(text);
  t.name_ = std::move(name);
  t.options_ = std::make_shared<const Options>(std::move(options));
  try {
    Parser parser(Lexer(*t.text_).run(), t.options_->funcs, t.defs_);
    t.root_ = parser.parse_root();
  } catch (const ParseError& e) {
    throw Error("template: " + error_location(t.name_, *t.text_, e.pos) + ": " + e.msg);
  }
  return t;
}

Template Template::with_bare_root(std::vector<Node> root) const {
  Template t;
  t.text_ = text_;
  t.name_ = name_;
  t.root_ = std::move(root);
  return t;
}

}  // namespace corral::tmpl::gotmpl
