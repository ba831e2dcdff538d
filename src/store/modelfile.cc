#include "store/modelfile.h"

#include <pwd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "sample/options.h"

namespace corral::store {
namespace {

using Json = nlohmann::ordered_json;

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_newline(char c) { return c == '\n' || c == '\r'; }

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string_view trim(std::string_view s) {
  const char* ws = " \t\r\n\v\f";
  const size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Ollama's unquote: """...""" or "..." around the whole (trimmed) value, else the value as it is.
// nullopt while a quote is still open.
std::optional<std::string> unquote(std::string_view s) {
  if (s.starts_with("\"\"\"")) {
    if (s.size() >= 6 && s.ends_with("\"\"\"")) return std::string(s.substr(3, s.size() - 6));
    return std::nullopt;
  }
  if (s.starts_with("\"")) {
    if (s.size() >= 2 && s.ends_with("\"")) return std::string(s.substr(1, s.size() - 2));
    return std::nullopt;
  }
  return std::string(s);
}

// golang.org/x/mod/semver's IsValid, after the 'v' Ollama adds: vMAJOR[.MINOR[.PATCH]], and with
// all three parts an optional -prerelease and +build.
bool valid_semver(std::string_view v) {
  if (!v.starts_with("v")) return false;
  v.remove_prefix(1);
  const auto number = [&v]() {
    size_t n = 0;
    while (n < v.size() && is_digit(v[n])) ++n;
    if (n == 0 || (n > 1 && v[0] == '0')) return false;
    v.remove_prefix(n);
    return true;
  };
  const auto idents = [&v](bool numeric_rule) {
    // dot-separated [0-9A-Za-z-]+; numeric ones (prerelease) without leading zeros
    for (;;) {
      size_t n = 0;
      bool all_digits = true;
      while (n < v.size() && (is_alpha(v[n]) || is_digit(v[n]) || v[n] == '-')) {
        all_digits = all_digits && is_digit(v[n]);
        ++n;
      }
      if (n == 0) return false;
      if (numeric_rule && all_digits && n > 1 && v[0] == '0') return false;
      v.remove_prefix(n);
      if (v.empty() || v[0] != '.') return true;
      v.remove_prefix(1);
    }
  };
  if (!number()) return false;
  int parts = 1;
  while (!v.empty() && v[0] == '.' && parts < 3) {
    v.remove_prefix(1);
    if (!number()) return false;
    ++parts;
  }
  if (v.empty()) return true;
  if (parts < 3) return false;
  if (v[0] == '-') {
    v.remove_prefix(1);
    if (!idents(true)) return false;
  }
  if (!v.empty() && v[0] == '+') {
    v.remove_prefix(1);
    if (!idents(false)) return false;
  }
  return v.empty();
}

class Parser {
 public:
  Parser(std::string_view text, std::string source) : s_(text), source_(std::move(source)) {
    if (s_.starts_with("\xEF\xBB\xBF")) s_.remove_prefix(3);  // UTF-8 byte order mark
  }

  Modelfile parse() {
    Modelfile mf;
    std::vector<std::pair<std::string, std::string>> params;
    int from_line = 0;
    for (;;) {
      skip_blank_lines();
      if (at_end()) break;
      const int line = line_;
      std::string word;
      while (!at_end() && is_alpha(peek())) word += get();
      if (word.empty() || (!at_end() && !is_blank(peek()) && !is_newline(peek()))) {
        std::string bad = word;
        while (!at_end() && !is_blank(peek()) && !is_newline(peek())) bad += get();
        fail(line, "unknown instruction '" + bad +
                       "' (instructions: FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, "
                       "MESSAGE, REQUIRES)");
      }
      const std::string instr = lower(word);
      static const char* kKnown[] = {"from",    "parameter", "template", "system",
                                     "adapter", "license",   "message",  "requires"};
      if (std::find(std::begin(kKnown), std::end(kKnown), instr) == std::end(kKnown)) {
        if (instr == "draft" || instr == "renderer" || instr == "parser") {
          fail(line, lower_to_upper(instr) + " is not supported yet");
        }
        fail(line, "unknown instruction '" + word +
                       "' (instructions: FROM, PARAMETER, TEMPLATE, SYSTEM, ADAPTER, LICENSE, "
                       "MESSAGE, REQUIRES)");
      }
      const std::string upper = lower_to_upper(instr);
      if (at_end() || is_newline(peek())) fail(line, upper + " needs a value");
      skip_blanks();

      std::string key;  // PARAMETER name or MESSAGE role
      if (instr == "parameter" || instr == "message") {
        while (!at_end() && (is_alpha(peek()) || is_digit(peek()) || peek() == '_')) key += get();
        if (key.empty()) {
          fail(line, instr == "parameter" ? "PARAMETER needs a name and a value"
                                          : "MESSAGE needs a role and a message");
        }
        if (at_end() || is_newline(peek())) {
          fail(line, instr == "parameter" ? "PARAMETER " + key + " has no value"
                                          : "MESSAGE " + key + " has no message");
        }
        if (!is_blank(peek())) {
          fail(line, std::string("unexpected '") + peek() + "' after " + upper + " " + key);
        }
        skip_blanks();
      }
      const std::string value = read_value(line, upper);

      if (instr == "from") {
        if (value.empty()) fail(line, "FROM needs a model: a .gguf file, a folder or a name");
        if (mf.from2) {
          fail(line,
               "a third FROM: a Modelfile names one model, or (a vision model in two "
               "files) its text GGUF and its projector GGUF");
        }
        if (from_line) {
          mf.from2 = value;
        } else {
          mf.from = value;
          from_line = line;
        }
      } else if (instr == "parameter") {
        if (sample::is_removed_option(key)) {
          mf.warnings.push_back(source_ + " line " + std::to_string(line) + ": parameter " + key +
                                " is deprecated and ignored");
          continue;
        }
        try {
          const std::pair<std::string, std::string> one[] = {{key, value}};
          sample::params_to_json(one);
        } catch (const std::invalid_argument& e) {
          fail(line, e.what());
        }
        params.emplace_back(key, value);
      } else if (instr == "template") {
        mf.template_text = value;
      } else if (instr == "system") {
        mf.system = value;
      } else if (instr == "license") {
        mf.licenses.push_back(value);
      } else if (instr == "message") {
        if (key != "system" && key != "user" && key != "assistant" && key != "tool") {
          fail(line, "MESSAGE role '" + key +
                         "' is not one of \"system\", \"user\", \"assistant\" or \"tool\"");
        }
        mf.messages.push_back({key, value});
      } else if (instr == "adapter") {
        fail(line, "ADAPTER is not supported yet");
      } else if (instr == "requires") {
        std::string v = value.starts_with("v") ? value : "v" + value;
        if (!valid_semver(v)) {
          fail(line, "REQUIRES must be a valid version (e.g. 0.14.0), not '" + value + "'");
        }
        mf.requires_version = v.substr(1);
      }
    }
    if (!from_line) throw ModelfileError(source_ + ": no FROM line");
    const nlohmann::json typed = sample::params_to_json(params);
    // Keys in the order Ollama's JSON encoder writes a map: sorted (nlohmann::json is sorted).
    mf.parameters = Json::parse(typed.dump());
    return mf;
  }

 private:
  static std::string lower_to_upper(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return s;
  }

  [[noreturn]] void fail(int line, const std::string& what) const {
    throw ModelfileError(source_ + " line " + std::to_string(line) + ": " + what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }
  char get() {
    const char c = s_[pos_++];
    if (c == '\n') ++line_;
    return c;
  }
  void skip_blanks() {
    while (!at_end() && is_blank(peek())) get();
  }
  // Blank lines and comment lines.
  void skip_blank_lines() {
    while (!at_end()) {
      const char c = peek();
      if (is_blank(c) || is_newline(c)) {
        get();
      } else if (c == '#') {
        while (!at_end() && peek() != '\n') get();
      } else {
        break;
      }
    }
  }

  // The rest of the line; while the value opens a quote it does not close, the following lines
  // too (the quote ends at a line whose end closes it, as in Ollama).
  std::string read_value(int line, const std::string& instr) {
    std::string buf;
    for (;;) {
      while (!at_end() && !is_newline(peek())) {
        const char c = get();
        // Control characters other than tab are dropped, as Ollama keeps only printable runes.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t') buf += c;
      }
      if (std::optional<std::string> v = unquote(trim(buf))) return *v;
      if (at_end()) {
        fail(line, instr + " value has an unterminated quote (" +
                       (trim(buf).starts_with("\"\"\"") ? "\"\"\"" : "\"") +
                       " opened here is never closed)");
      }
      buf += get();  // line ends are kept as written (\n or \r)
    }
  }

  std::string_view s_;
  std::string source_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Whether a value wrapped in `quote` would be closed at one of its own line ends: the reader stops
// at the first line end where the text so far, right-trimmed, ends in the closing quote.
bool closes_early(const std::string& v, std::string_view quote) {
  for (size_t nl = v.find_first_of("\r\n"); nl != std::string::npos;
       nl = v.find_first_of("\r\n", nl + 1)) {
    std::string_view head(v.data(), nl);
    while (!head.empty() && std::string_view(" \t\r\n\v\f").find(head.back()) != head.npos) {
      head.remove_suffix(1);
    }
    if (head.ends_with(quote)) return true;
  }
  return false;
}

// Quotes a value so that parse_modelfile gives it back unchanged: plain when it can be, "..."
// when it holds no quote (as Ollama writes), else """...""".
std::string quote(const std::string& v, const std::string& what) {
  const bool plain = !v.empty() && v.find_first_of("\r\n\v\f") == std::string::npos &&
                     !is_blank(v.front()) && !is_blank(v.back()) && v.front() != '"';
  if (plain) return v;
  const bool single_ok = !v.starts_with("\"") && !closes_early(v, "\"");
  if (v.find('"') == std::string::npos && single_ok) return "\"" + v + "\"";
  if (!closes_early(v, "\"\"\"")) return "\"\"\"" + v + "\"\"\"";
  if (single_ok) return "\"" + v + "\"";
  throw ModelfileError(what +
                       " cannot be written in a Modelfile: lines of its text end in "
                       "quotes that would close it early");
}

std::string value_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

}  // namespace

Modelfile parse_modelfile(std::string_view text, const std::string& source) {
  return Parser(text, source).parse();
}

std::string format_modelfile(const Modelfile& mf, const std::string& name) {
  std::string out;
  out += "# Modelfile generated by \"corral show\"\n";
  out += "# To build a new Modelfile based on this, replace FROM with:\n";
  out += "# FROM " + name + "\n\n";
  out += "FROM " + quote(mf.from, "FROM") + "\n";
  if (mf.from2) out += "FROM " + quote(*mf.from2, "FROM") + "\n";
  if (mf.template_text) out += "TEMPLATE " + quote(*mf.template_text, "TEMPLATE") + "\n";
  if (mf.system) out += "SYSTEM " + quote(*mf.system, "SYSTEM") + "\n";
  for (const auto& item : mf.parameters.items()) {
    if (item.value().is_array()) {
      for (const Json& v : item.value()) {
        out += "PARAMETER " + item.key() + " " + quote(value_text(v), item.key()) + "\n";
      }
    } else {
      out += "PARAMETER " + item.key() + " " + quote(value_text(item.value()), item.key()) + "\n";
    }
  }
  for (const std::string& l : mf.licenses) out += "LICENSE " + quote(l, "LICENSE") + "\n";
  for (const ModelfileMessage& m : mf.messages) {
    out += "MESSAGE " + m.role + " " + quote(m.content, "MESSAGE") + "\n";
  }
  if (mf.requires_version) out += "REQUIRES " + *mf.requires_version + "\n";
  return out;
}

std::filesystem::path expand_modelfile_path(const std::string& arg,
                                            const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (arg.starts_with("/")) return fs::path(arg).lexically_normal();
  if (arg.starts_with("~")) {
    const size_t slash = arg.find('/');
    const std::string user = arg.substr(1, slash == std::string::npos ? arg.npos : slash - 1);
    std::string home;
    if (user.empty()) {
      const char* h = std::getenv("HOME");
      if (h) home = h;
      if (home.empty()) {
        if (const passwd* pw = getpwuid(getuid())) home = pw->pw_dir;
      }
    } else if (const passwd* pw = getpwnam(user.c_str())) {
      home = pw->pw_dir;
    } else {
      throw ModelfileError("cannot expand '" + arg + "': no user '" + user + "'");
    }
    const std::string rest = slash == std::string::npos ? "" : arg.substr(slash + 1);
    return (fs::path(home) / rest).lexically_normal();
  }
  return fs::absolute(dir / arg).lexically_normal();
}

}  // namespace corral::store
