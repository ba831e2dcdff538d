#include "template/jinja/lexer.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>

#include "template/jinja/value.h"
#include "tokenizer/pretokenize.h"

namespace corral::tmpl::jinja {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

class Lexer {
 public:
  explicit Lexer(std::string source) : src_(std::move(source)) {
    // Jinja2 normalizes newlines and drops one trailing newline (keep_trailing_newline=False).
    std::string normalized;
    normalized.reserve(src_.size());
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\r') {
        normalized += '\n';
        if (i + 1 < src_.size() && src_[i + 1] == '\n') ++i;
      } else {
        normalized += src_[i];
      }
    }
    if (!normalized.empty() && normalized.back() == '\n') normalized.pop_back();
    src_ = std::move(normalized);
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i)
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    const size_t n = src_.size();
    while (pos < n) {
      size_t tag = find_tag(pos);
      if (tag == std::string::npos) {
        emit(Token::Type::kText, src_.substr(pos), pos);
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char modifier =
          tag + 2 < n && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      std::string text = src_.substr(pos, tag - pos);
      if (modifier == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (modifier != '+' && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 || line_starting) {
          bool blank = l_pos < text.size() && std::all_of(text.begin() + l_pos, text.end(),
                                                          [](char c) { return is_space(c); });
          if (blank) text.resize(l_pos);
        }
      }
      if (!text.empty()) emit(Token::Type::kText, text, pos);
      size_t p = tag + 2 + (modifier ? 1 : 0);
      if (kind == '#') {
        pos = lex_comment(tag, p);
      } else if (kind == '%' && is_raw_begin(p)) {
        pos = lex_raw(tag, p);
      } else {
        pos = lex_tag(tag, p, kind == '{');
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    emit(Token::Type::kEof, "", n);
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(const std::string& message, size_t offset) const {
    auto [line, column] = position(offset);
    throw Error("TemplateSyntaxError", message, line, column);
  }

  std::pair<int, int> position(size_t offset) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
    size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(offset - line_starts_[line - 1] + 1)};
  }

  void emit(Token::Type type, std::string value, size_t offset) {
    auto [line, column] = position(offset);
    tokens_.push_back(Token{type, std::move(value), line, column});
  }

  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string::npos;
  }

  size_t skip_spaces(size_t p) const {
    while (p < src_.size() && is_space(src_[p])) ++p;
    return p;
  }

  bool starts_with(size_t p, const char* s) const { return src_.compare(p, strlen(s), s) == 0; }

  // After the end of a block or comment tag at `p` with `modifier`: `-` strips the whitespace
  // that follows, `+` keeps everything, and plain tags drop one newline (trim_blocks).
  size_t after_block_end(size_t p, char modifier) const {
    if (modifier == '-') return skip_spaces(p);
    if (modifier == 0 && p < src_.size() && src_[p] == '\n') return p + 1;
    return p;
  }

  size_t lex_comment(size_t tag, size_t p) {
    size_t end = src_.find("#}", p);
    if (end == std::string::npos) fail("Missing end of comment tag", tag);
    char modifier = end > p && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    return after_block_end(end + 2, modifier);
  }

  // `{% raw %}` (with optional whitespace control): does the tag at p read "raw"?
  bool is_raw_begin(size_t p) const {
    p = skip_spaces(p);
    if (!starts_with(p, "raw")) return false;
    p = skip_spaces(p + 3);
    return starts_with(p, "%}") || starts_with(p, "-%}");
  }

  size_t lex_raw(size_t tag, size_t p) {
    p = skip_spaces(skip_spaces(p) + 3);
    // The raw tag's own end: `-%}` strips what follows; plain `%}` keeps even the newline.
    if (src_[p] == '-')
      p = skip_spaces(p + 3);
    else
      p += 2;
    size_t content = p;
    for (size_t i = find_tag(p); i != std::string::npos; i = find_tag(i + 1)) {
      if (src_[i + 1] != '%') continue;
      size_t q = i + 2;
      char open_modifier = q < src_.size() && (src_[q] == '-' || src_[q] == '+') ? src_[q] : 0;
      if (open_modifier) ++q;
      q = skip_spaces(q);
      if (!starts_with(q, "endraw")) continue;
      q = skip_spaces(q + 6);
      char close_modifier = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) close_modifier = src_[q++];
      if (!starts_with(q, "%}")) continue;
      std::string text = src_.substr(content, i - content);
      if (open_modifier == '-') {
        while (!text.empty() && is_space(text.back())) text.pop_back();
      } else if (open_modifier != '+') {
        size_t l_pos = text.rfind('\n');
        if (l_pos != std::string::npos &&
            std::all_of(text.begin() + l_pos + 1, text.end(), [](char c) { return is_space(c); }))
          text.resize(l_pos + 1);
      }
      if (!text.empty()) emit(Token::Type::kText, text, content);
      return after_block_end(q + 2, close_modifier);
    }
    fail("Missing end of raw directive", tag);
  }

  size_t lex_tag(size_t tag, size_t p, bool variable) {
    emit(variable ? Token::Type::kVarBegin : Token::Type::kBlockBegin, "", tag);
    std::vector<char> balancing;
    const size_t n = src_.size();
    while (true) {
      p = skip_spaces(p);
      if (p >= n) fail("unexpected end of template, expected end of tag", tag);
      if (balancing.empty()) {
        if (variable) {
          if (starts_with(p, "-}}")) {
            emit(Token::Type::kVarEnd, "", p);
            return skip_spaces(p + 3);
          }
          if (starts_with(p, "}}")) {
            emit(Token::Type::kVarEnd, "", p);
            return p + 2;
          }
        } else {
          if ((src_[p] == '-' || src_[p] == '+') && starts_with(p + 1, "%}")) {
            emit(Token::Type::kBlockEnd, "", p);
            return after_block_end(p + 3, src_[p]);
          }
          if (starts_with(p, "%}")) {
            emit(Token::Type::kBlockEnd, "", p);
            return after_block_end(p + 2, 0);
          }
        }
      }
      p = lex_token(p, balancing);
    }
  }

  size_t lex_token(size_t p, std::vector<char>& balancing) {
    const size_t n = src_.size();
    char c = src_[p];
    if (c == '\'' || c == '"') return lex_string(p);
    if (std::isdigit(static_cast<unsigned char>(c))) return lex_number(p);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t q = p;
      while (q < n && (std::isalnum(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) ++q;
      emit(Token::Type::kName, src_.substr(p, q - p), p);
      return q;
    }
    static const char* kTwoChar[] = {"//", "**", "==", "!=", "<=", ">="};
    for (const char* op : kTwoChar) {
      if (starts_with(p, op)) {
        emit(Token::Type::kOp, op, p);
        return p + 2;
      }
    }
    if (std::string("+-*/%~<>=.,:|()[]{}").find(c) == std::string::npos)
      fail(std::string("unexpected char '") + c + "'", p);
    if (c == '(' || c == '[' || c == '{') {
      balancing.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balancing.empty()) fail(std::string("unexpected '") + c + "'", p);
      if (balancing.back() != c)
        fail(std::string("unexpected '") + c + "', expected '" + balancing.back() + "'", p);
      balancing.pop_back();
    }
    emit(Token::Type::kOp, std::string(1, c), p);
    return p + 1;
  }

  size_t lex_number(size_t p) {
    const size_t n = src_.size();
    auto digits = [&](size_t q) {
      while (q < n && (std::isdigit(static_cast<unsigned char>(src_[q])) ||
                       (src_[q] == '_' && q + 1 < n &&
                        std::isdigit(static_cast<unsigned char>(src_[q + 1])))))
        ++q;
      return q;
    };
    if (src_[p] == '0' && p + 1 < n && std::strchr("xXoObB", src_[p + 1]) && src_[p + 1] != 0) {
      int base = (src_[p + 1] == 'x' || src_[p + 1] == 'X')   ? 16
                 : (src_[p + 1] == 'o' || src_[p + 1] == 'O') ? 8
                                                              : 2;
      size_t q = p + 2;
      std::string value;
      while (q < n && (std::isxdigit(static_cast<unsigned char>(src_[q])) || src_[q] == '_')) {
        if (src_[q] != '_') value += src_[q];
        ++q;
      }
      if (value.empty()) fail("invalid number literal", p);
      try {
        emit(Token::Type::kInt, std::to_string(std::stoll(value, nullptr, base)), p);
      } catch (const std::exception&) {
        fail("invalid number literal", p);
      }
      return q;
    }
    size_t q = digits(p);
    bool is_float = false;
    bool after_dot =
        !tokens_.empty() && tokens_.back().type == Token::Type::kOp && tokens_.back().value == ".";
    if (!after_dot && q + 1 < n && src_[q] == '.' &&
        std::isdigit(static_cast<unsigned char>(src_[q + 1]))) {
      q = digits(q + 1);
      is_float = true;
    }
    if (!after_dot && q < n && (src_[q] == 'e' || src_[q] == 'E')) {
      size_t r = q + 1;
      if (r < n && (src_[r] == '+' || src_[r] == '-')) ++r;
      if (r < n && std::isdigit(static_cast<unsigned char>(src_[r]))) {
        q = digits(r);
        is_float = true;
      }
    }
    std::string text;
    for (size_t i = p; i < q; ++i)
      if (src_[i] != '_') text += src_[i];
    emit(is_float ? Token::Type::kFloat : Token::Type::kInt, text, p);
    return q;
  }

  size_t lex_string(size_t p) {
    const size_t n = src_.size();
    char quote = src_[p];
    std::string out;
    size_t q = p + 1;
    auto hex = [&](size_t at, int count, uint32_t& cp) {
      if (at + count > n) return false;
      cp = 0;
      for (int i = 0; i < count; ++i) {
        char h = src_[at + i];
        if (!std::isxdigit(static_cast<unsigned char>(h))) return false;
        cp = cp * 16 +
             (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      return true;
    };
    while (true) {
      if (q >= n) fail("unexpected end of string", p);
      char c = src_[q];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++q;
        continue;
      }
      if (q + 1 >= n) fail("unexpected end of string", p);
      char e = src_[q + 1];
      q += 2;
      uint32_t cp = 0;
      switch (e) {
        case '\n':
          break;
        case '\\':
        case '\'':
        case '"':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case 'a':
          out += '\a';
          break;
        case 'x':
        case 'u':
        case 'U': {
          int count = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (!hex(q, count, cp) || cp > 0x10FFFF) fail("invalid escape in string literal", q - 2);
          tokenizer::utf8_append(out, cp);
          q += count;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            cp = e - '0';
            for (int i = 0; i < 2 && q < n && src_[q] >= '0' && src_[q] <= '7'; ++i)
              cp = cp * 8 + (src_[q++] - '0');
            tokenizer::utf8_append(out, cp);
          } else {
            out += '\\';
            out += e;
          }
      }
    }
    emit(Token::Type::kString, out, p);
    return q + 1;
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

}  // namespace corral::tmpl::jinja
