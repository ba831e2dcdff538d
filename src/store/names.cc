// Model names as Ollama's types/model/name.go parses them: [host/][namespace/]model[:tag]. Each
// part is checked with Ollama's character and length rules; those rules also keep every name
// inside the store (no part can be empty, "." or "..", or hold a '/').
#include "store/names.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace corral::store {
namespace {

constexpr const char* kDefaultHost = "registry.ollama.ai";
constexpr const char* kDefaultNamespace = "library";

enum class Part { kHost, kNamespace, kModel, kTag };

const char* part_name(Part p) {
  switch (p) {
    case Part::kHost:
      return "host";
    case Part::kNamespace:
      return "namespace";
    case Part::kModel:
      return "model";
    case Part::kTag:
      return "tag";
  }
  return "part";
}

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

std::string show_char(char c) {
  if (c >= 0x20 && c < 0x7f) return std::string("'") + c + "'";
  static const char* kHex = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(c);
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
}

// Empty when `s` is a valid part of kind `p`, else why not.
std::string check_part(Part p, std::string_view s) {
  const size_t max_len = p == Part::kHost ? 350 : 80;
  if (s.empty()) return std::string("the ") + part_name(p) + " is empty";
  if (s.size() > max_len) {
    return std::string("the ") + part_name(p) + " is " + std::to_string(s.size()) +
           " characters long (at most " + std::to_string(max_len) + ")";
  }
  if (!is_word_char(s[0])) {
    return std::string("the ") + part_name(p) + " '" + std::string(s) +
           "' must start with a letter, a digit or '_'";
  }
  for (size_t i = 1; i < s.size(); ++i) {
    const char c = s[i];
    bool ok = is_word_char(c) || c == '-' || c == '_';
    if (c == '.') ok = p != Part::kNamespace;
    if (c == ':') ok = p == Part::kHost;
    if (!ok) {
      return std::string("the ") + part_name(p) + " '" + std::string(s) + "' holds " +
             show_char(c) + " (allowed: letters, digits, '_', '-'" +
             (p == Part::kNamespace ? "" : ", '.'") + (p == Part::kHost ? ", ':'" : "") + ")";
    }
  }
  return {};
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

ModelName ModelName::parse(std::string_view text) {
  // A long name is quoted in part: the message goes back to whoever sent it.
  const std::string shown = text.size() <= 120 ? std::string(text)
                                               : std::string(text.substr(0, 100)) + "... (" +
                                                     std::to_string(text.size()) + " bytes)";
  const std::string quoted = "invalid model name '" + shown + "': ";
  auto fail = [&](const std::string& why) { throw NameError(quoted + why); };
  if (text.empty()) throw NameError("invalid model name: the name is empty");
  // A long string is refused before it is split: no part may exceed 350 bytes, so no valid name
  // is longer than this.
  if (text.size() > 350 + 80 * 3 + 3) fail("the name is too long");

  std::string_view rest = text;
  if (const size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    rest = rest.substr(scheme + 3);
  }

  ModelName n;
  // '/' cannot appear in a tag, so a ':' after the last '/' starts the tag (a ':' before it is a
  // host's port).
  const size_t colon = rest.rfind(':');
  const size_t slash = rest.rfind('/');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    if (std::string err = check_part(Part::kTag, n.tag); !err.empty()) fail(err);
  }

  std::vector<std::string_view> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = rest.find('/', start);
    parts.push_back(rest.substr(start, at == std::string_view::npos ? rest.npos : at - start));
    if (at == std::string_view::npos) break;
    start = at + 1;
  }
  if (parts.size() > 3) {
    fail("it has " + std::to_string(parts.size()) +
         " parts separated by '/' (at most 3: host/namespace/model)");
  }
  static const Part kKinds[3][3] = {{Part::kModel},
                                    {Part::kNamespace, Part::kModel},
                                    {Part::kHost, Part::kNamespace, Part::kModel}};
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part kind = kKinds[parts.size() - 1][i];
    if (std::string err = check_part(kind, parts[i]); !err.empty()) fail(err);
    std::string value(parts[i]);
    if (kind == Part::kHost) n.host = std::move(value);
    if (kind == Part::kNamespace) n.ns = std::move(value);
    if (kind == Part::kModel) n.model = std::move(value);
  }
  return n;
}

bool ModelName::valid(std::string_view text) {
  try {
    parse(text);
    return true;
  } catch (const NameError&) {
    return false;
  }
}

std::string ModelName::display() const {
  std::string out;
  if (!iequals(host, kDefaultHost)) {
    out = host + "/" + ns + "/";
  } else if (!iequals(ns, kDefaultNamespace)) {
    out = ns + "/";
  }
  return out + model + ":" + tag;
}

std::string ModelName::manifest_path() const { return host + "/" + ns + "/" + model + "/" + tag; }

bool ModelName::operator==(const ModelName& other) const {
  return iequals(host, other.host) && iequals(ns, other.ns) && iequals(model, other.model) &&
         iequals(tag, other.tag);
}

}  // namespace corral::store
