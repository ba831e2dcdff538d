// JSON schema -> GBNF, after the facts of llama.cpp's common/json-schema-to-grammar.cpp (the
// converter Ollama uses): properties in schema order, required ones mandatory, optional ones
// omittable, no properties beyond the declared ones unless additionalProperties says so,
// whitespace limited to one space or a newline plus indent between tokens.
//
// Everything the grammar lets through parses as JSON and validates against the schema for the
// keywords handled here; a keyword that cannot be expressed gives std::invalid_argument naming
// it. Bounds on non-integer numbers are not enforced (noted where they are read).
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "sample/grammar.h"
#include "sample/json_schema_regex.h"

namespace corral::sample {

namespace {

using Json = nlohmann::ordered_json;

// Schemas nest (properties, items, anyOf, ...); the walk recurses once per level.
constexpr int kMaxDepth = 100;
// Counts above this become repetitions the grammar cannot hold; a maximum above it is treated as
// no maximum (no model writes that much), a minimum above it is an error.
constexpr int64_t kMaxCount = 10000;
// Integer bounds must fit the 16 digits the integer rule allows.
constexpr double kMaxIntegerBound = 1e15;
constexpr size_t kMaxGrammarBytes = size_t{8} << 20;

[[noreturn]] void unsupported(const std::string& what) {
  throw std::invalid_argument("JSON schema: " + what);
}

// The primitive rules, added on first use with the rules they use.
struct Primitive {
  const char* name;
  const char* body;
  std::vector<const char*> uses;
};

const std::vector<Primitive>& primitives() {
  static const std::vector<Primitive> table = {
      {"ws", R"(( " " | "\n" [ \t]{0,20} )?)", {}},
      {"hex", R"([0-9a-fA-F])", {}},
      {"unicode",
       R"([0-9a-cA-Ce-fE-F] hex hex hex | [dD] [0-7] hex hex | [dD] [89abAB] hex hex "\\u" [dD] [c-fC-F] hex hex)",
       {"hex"}},
      {"char", R"([^"\\\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" unicode ))", {"unicode"}},
      {"string", R"("\"" char* "\"")", {"char"}},
      {"integer", R"("-"? ( "0" | [1-9] [0-9]{0,15} ))", {}},
      {"number", R"(integer ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?)", {"integer"}},
      {"boolean", R"("true" | "false")", {}},
      {"null", R"("null")", {}},
      {"value",
       R"(object | array | string | number | boolean | null)",
       {"object", "array", "string", "number", "boolean", "null"}},
      {"object", R"("{" ws ( member ( "," ws member )* )? "}")", {"member", "ws"}},
      {"member", R"(string ws ":" ws value ws)", {"string", "ws", "value"}},
      {"array", R"("[" ws ( value ws ( "," ws value ws )* )? "]")", {"value", "ws"}},
      {"date",
       R"([0-9]{4} "-" ( "0" [1-9] | "1" [0-2] ) "-" ( "0" [1-9] | [12] [0-9] | "3" [01] ))",
       {}},
      {"time",
       R"(( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ))",
       {}},
      {"date-time", R"(date "T" time)", {"date", "time"}},
      {"uuid", R"(hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12})", {"hex"}},
      // A property name outside the declared ones: no escapes, so "\u0061" cannot spell one.
      {"keychar", R"([^"\\\x00-\x1F])", {}},
  };
  return table;
}

// A GBNF literal spelling `text` exactly.
std::string literal(std::string_view text) {
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7F) {
      static const char* kHex = "0123456789ABCDEF";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string sanitize(std::string_view name) {
  std::string out;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    out += ok ? c : '-';
  }
  if (out.empty()) out = "anon";
  return out;
}

std::string digits_of(int64_t v) { return std::to_string(v); }

// Decimal numbers with exactly lo.size() digits between lo and hi (same length, lo <= hi).
std::string same_length_range(const std::string& lo, const std::string& hi) {
  if (lo.empty()) return "";
  if (lo == hi) return literal(lo);
  const size_t n = lo.size();
  const char l = lo[0], h = hi[0];
  const std::string lo_rest = lo.substr(1), hi_rest = hi.substr(1);
  auto any_digits = [](size_t k) {
    return k == 0 ? std::string() : k == 1 ? "[0-9]" : "[0-9]{" + std::to_string(k) + "}";
  };
  auto join = [](const std::string& a, const std::string& b) {
    return b.empty() ? a : a.empty() ? b : a + " " + b;
  };
  if (l == h)
    return join(literal(std::string(1, l)), "(" + same_length_range(lo_rest, hi_rest) + ")");
  const bool lo_zeros = lo_rest.find_first_not_of('0') == std::string::npos;
  const bool hi_nines = hi_rest.find_first_not_of('9') == std::string::npos;
  std::vector<std::string> alts;
  char first_full = l, last_full = h;
  if (!lo_zeros) {
    alts.push_back(join(literal(std::string(1, l)),
                        "(" + same_length_range(lo_rest, std::string(n - 1, '9')) + ")"));
    ++first_full;
  }
  if (!hi_nines) --last_full;
  if (first_full <= last_full) {
    alts.push_back(join(std::string("[") + first_full + "-" + last_full + "]", any_digits(n - 1)));
  }
  if (!hi_nines) {
    alts.push_back(join(literal(std::string(1, h)),
                        "(" + same_length_range(std::string(n - 1, '0'), hi_rest) + ")"));
  }
  std::string out;
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out;
}

// Non-negative integers in [lo, hi] (hi absent: unbounded), written without leading zeros.
std::string natural_range(int64_t lo, std::optional<int64_t> hi) {
  std::vector<std::string> alts;
  const size_t lo_digits = digits_of(lo).size();
  const size_t last_digits = hi ? digits_of(*hi).size() : lo_digits;
  for (size_t d = lo_digits; d <= last_digits; ++d) {
    const int64_t lowest = d == 1 ? 0 : static_cast<int64_t>(std::pow(10.0, d - 1));
    const int64_t highest = static_cast<int64_t>(std::pow(10.0, d)) - 1;
    const int64_t a = std::max(lo, lowest);
    const int64_t b = hi ? std::min(*hi, highest) : highest;
    if (a <= b) alts.push_back("(" + same_length_range(digits_of(a), digits_of(b)) + ")");
  }
  if (!hi && lo_digits < 16) {
    // Every longer number, up to the 16 digits the integer rule allows.
    alts.push_back("[1-9] [0-9]{" + std::to_string(lo_digits) + ",15}");
  }
  if (alts.empty()) unsupported("integer range is empty");
  std::string out;
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out;
}

class Converter {
 public:
  explicit Converter(const Json& root) : root_(root) {
    for (const Primitive& p : primitives()) reserved_.insert(p.name);
  }

  std::string convert() {
    const std::string expr = visit(root_, "root", 0);
    if (!rules_.count("root")) define("root", expr);
    std::string out;
    for (const std::string& name : order_) out += name + " ::= " + rules_[name] + "\n";
    return out;
  }

 private:
  // Adds a primitive rule (and what it uses); returns its name.
  std::string use(const std::string& name) {
    if (rules_.count(name)) return name;
    for (const Primitive& p : primitives()) {
      if (name != p.name) continue;
      define(name, p.body);
      for (const char* dep : p.uses) use(dep);
      return name;
    }
    throw std::logic_error("json_schema: no primitive rule " + name);
  }

  void define(const std::string& name, const std::string& body) {
    bytes_ += name.size() + body.size() + 6;
    if (bytes_ > kMaxGrammarBytes) unsupported("the grammar for this schema is too large");
    if (!rules_.count(name)) order_.push_back(name);
    rules_[name] = body;
  }

  // A new rule named after `hint` (made unique); returns its name.
  std::string add_rule(const std::string& hint, const std::string& body) {
    std::string name = sanitize(hint);
    const std::string base = name;
    for (int i = 1; reserved_.count(name); ++i) {
      const auto existing = rules_.find(name);
      if (existing != rules_.end() && existing->second == body) return name;
      name = base + "-" + std::to_string(i);
    }
    reserved_.insert(name);
    define(name, body);
    return name;
  }

  const Json& resolve(const std::string& ref) {
    if (ref.empty() || ref[0] != '#') unsupported("$ref '" + ref + "' is not local (#/...)");
    try {
      const std::string pointer = ref.substr(1);
      const Json& target = pointer.empty() ? root_ : root_.at(Json::json_pointer(pointer));
      return target;
    } catch (const nlohmann::json::exception&) {
      unsupported("$ref '" + ref + "' does not resolve");
    }
  }

  // A GBNF expression for the values `schema` admits; `name` names the rules made for it.
  std::string visit(const Json& schema, const std::string& name, int depth) {
    if (depth > kMaxDepth)
      unsupported("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) unsupported("'false' admits no value");
      return use("value");
    }
    if (!schema.is_object()) unsupported("a schema must be an object, at " + name);
    if (schema.contains("$ref")) {
      const Json& ref = schema["$ref"];
      if (!ref.is_string()) unsupported("$ref must be a string");
      const std::string target = ref.get<std::string>();
      const auto known = refs_.find(target);
      if (known != refs_.end()) return known->second;
      std::string rule = sanitize(target.substr(target.find_last_of('/') + 1));
      if (rule.empty() || rule == "-" || target == "#") rule = "root";
      while (reserved_.count(rule)) rule += "-ref";
      reserved_.insert(rule);
      refs_[target] = rule;
      define(rule, visit(resolve(target), rule, depth + 1));
      return rule;
    }
    if (schema.contains("const")) return literal(schema["const"].dump());
    if (schema.contains("enum")) {
      const Json& values = schema["enum"];
      if (!values.is_array() || values.empty()) unsupported("enum must be a non-empty array");
      std::string alts;
      for (const Json& v : values) alts += (alts.empty() ? "" : " | ") + literal(v.dump());
      return add_rule(name, alts);
    }
    for (const char* key : {"anyOf", "oneOf"}) {
      if (!schema.contains(key)) continue;
      const Json& subs = schema[key];
      if (!subs.is_array() || subs.empty())
        unsupported(std::string(key) + " must be a non-empty array");
      std::string alts;
      for (size_t i = 0; i < subs.size(); ++i) {
        alts += (i ? " | " : "") + visit(subs[i], name + "-" + std::to_string(i), depth + 1);
      }
      return add_rule(name, alts);
    }
    if (schema.contains("allOf")) return visit(merge_all_of(schema, depth), name, depth + 1);
    if (schema.contains("type") && schema["type"].is_array()) {
      const Json& types = schema["type"];
      if (types.empty()) unsupported("type must not be an empty array");
      std::string alts;
      for (size_t i = 0; i < types.size(); ++i) {
        Json one = schema;
        one["type"] = types[i];
        alts += (i ? " | " : "") + visit(one, name + "-" + std::to_string(i), depth + 1);
      }
      return add_rule(name, alts);
    }
    std::string type;
    if (schema.contains("type")) {
      if (!schema["type"].is_string()) unsupported("type must be a string or an array of strings");
      type = schema["type"].get<std::string>();
    } else if (schema.contains("properties") || schema.contains("additionalProperties") ||
               schema.contains("required")) {
      type = "object";
    } else if (schema.contains("items") || schema.contains("prefixItems") ||
               schema.contains("minItems") || schema.contains("maxItems")) {
      type = "array";
    } else if (schema.contains("pattern") || schema.contains("format") ||
               schema.contains("minLength") || schema.contains("maxLength")) {
      type = "string";
    } else {
      return use("value");
    }
    if (type == "object") return object_rule(schema, name, depth);
    if (type == "array") return array_rule(schema, name, depth);
    if (type == "string") return string_rule(schema, name);
    if (type == "integer") return integer_rule(schema, name);
    // Bounds on non-integer numbers (minimum, maximum, multipleOf) are not enforced.
    if (type == "number") return use("number");
    if (type == "boolean") return use("boolean");
    if (type == "null") return use("null");
    unsupported("unknown type '" + type + "'");
  }

  // allOf whose parts are objects: one object with every part's properties and requirements.
  Json merge_all_of(const Json& schema, int depth) {
    Json merged = schema;
    merged.erase("allOf");
    const Json& parts = schema["allOf"];
    if (!parts.is_array() || parts.empty()) unsupported("allOf must be a non-empty array");
    if (parts.size() == 1 && !schema.contains("properties")) {
      Json one = parts[0];
      for (auto it = merged.begin(); it != merged.end(); ++it) {
        if (!one.contains(it.key())) one[it.key()] = it.value();
      }
      return one;
    }
    for (const Json& raw : parts) {
      const Json* part = &raw;
      for (int hops = 0; part->is_object() && part->contains("$ref"); ++hops) {
        if (hops > kMaxDepth) unsupported("$ref chain too long in allOf");
        part = &resolve((*part)["$ref"].get<std::string>());
      }
      if (!part->is_object()) unsupported("allOf parts must be schemas");
      if (part->contains("allOf")) {
        if (depth > kMaxDepth) unsupported("allOf nested too deeply");
        const Json flat = merge_all_of(*part, depth + 1);
        part = &flat;
        merge_into(merged, *part);
        continue;
      }
      const bool objectish = part->value("type", "object") == "object" &&
                             !part->contains("anyOf") && !part->contains("oneOf") &&
                             !part->contains("enum") && !part->contains("const");
      if (!objectish) unsupported("allOf is supported only for object schemas");
      merge_into(merged, *part);
    }
    merged["type"] = "object";
    return merged;
  }

  static void merge_into(Json& merged, const Json& part) {
    if (part.contains("properties")) {
      for (auto it = part["properties"].begin(); it != part["properties"].end(); ++it) {
        merged["properties"][it.key()] = it.value();
      }
    }
    if (part.contains("required")) {
      for (const Json& r : part["required"]) {
        Json& req = merged["required"];
        if (std::find(req.begin(), req.end(), r) == req.end()) req.push_back(r);
      }
    }
    if (part.contains("additionalProperties") && !merged.contains("additionalProperties")) {
      merged["additionalProperties"] = part["additionalProperties"];
    }
  }

  std::string object_rule(const Json& schema, const std::string& name, int depth) {
    const std::string ws = use("ws");
    const Json empty = Json::object();
    const Json& props = schema.contains("properties") ? schema["properties"] : empty;
    if (!props.is_object()) unsupported("properties must be an object");
    std::set<std::string> required;
    if (schema.contains("required")) {
      if (!schema["required"].is_array()) unsupported("required must be an array");
      for (const Json& r : schema["required"]) {
        if (!r.is_string()) unsupported("required must list strings");
        required.insert(r.get<std::string>());
      }
    }
    // additionalProperties: absent means none when properties are declared (llama.cpp's choice:
    // the output holds what the caller asked for), any otherwise.
    std::string extra_value;
    if (schema.contains("additionalProperties")) {
      const Json& ap = schema["additionalProperties"];
      if (!(ap.is_boolean() && !ap.get<bool>())) {
        extra_value = visit(ap, name + "-additional", depth + 1);
      }
    } else if (props.empty()) {
      extra_value = use("value");
    }
    std::vector<std::string> keys, kvs;
    std::vector<bool> optional;
    for (auto it = props.begin(); it != props.end(); ++it) {
      const std::string value = visit(it.value(), name + "-" + it.key(), depth + 1);
      keys.push_back(it.key());
      kvs.push_back(literal(Json(it.key()).dump()) + " " + ws + " \":\" " + ws + " " + value);
      optional.push_back(!required.count(it.key()));
    }
    for (const std::string& r : required) {
      if (!props.contains(r)) {
        if (extra_value.empty()) unsupported("required property '" + r + "' is not declared");
        keys.push_back(r);
        kvs.push_back(literal(Json(r).dump()) + " " + ws + " \":\" " + ws + " " + extra_value);
        optional.push_back(false);
      }
    }
    std::string extra_kv;
    if (!extra_value.empty()) {
      extra_kv = add_rule(name + "-extra-kv",
                          excluded_key(keys, name) + " " + ws + " \":\" " + ws + " " + extra_value);
    }
    const bool all_required =
        std::none_of(optional.begin(), optional.end(), [](bool o) { return o; });
    if (all_required && extra_kv.empty()) {
      std::string body = "\"{\" " + ws;
      for (size_t i = 0; i < kvs.size(); ++i) {
        body += (i ? " \",\" " + ws + " " : " ") + kvs[i] + " " + ws;
      }
      return add_rule(name, body + " \"}\"");
    }
    // Chains over the properties in order: "first" while none is written yet (no comma),
    // "rest" after one; an optional property may be skipped in either.
    std::string next_first, next_rest;
    if (extra_kv.empty()) {
      next_first = next_rest = "\"\"";
    } else {
      next_rest = add_rule(name + "-extras", "( \",\" " + ws + " " + extra_kv + " " + ws + " )*");
      next_first =
          add_rule(name + "-extras-first", "( " + extra_kv + " " + ws + " " + next_rest + " )?");
    }
    for (size_t i = kvs.size(); i-- > 0;) {
      const std::string tag = name + "-" + std::to_string(i);
      std::string rest = "\",\" " + ws + " " + kvs[i] + " " + ws + " " + next_rest;
      std::string first = kvs[i] + " " + ws + " " + next_rest;
      if (optional[i]) {
        rest += " | " + next_rest;
        first += " | " + next_first;
      }
      next_rest = add_rule(tag + "-rest", rest);
      next_first = add_rule(tag + "-first", first);
    }
    return add_rule(name, "\"{\" " + ws + " " + next_first + " \"}\"");
  }

  // A JSON string that spells none of `keys`: a walk over the keys' trie where leaving it (a
  // character no key continues with) frees the rest of the name.
  std::string excluded_key(const std::vector<std::string>& keys, const std::string& name) {
    const std::string keychar = use("keychar");
    if (keys.empty()) return "\"\\\"\" " + keychar + "* \"\\\"\"";
    struct Node {
      std::map<std::string, size_t> children;  // next character (UTF-8) -> node
      bool is_key = false;
    };
    std::vector<Node> nodes(1);
    for (const std::string& key : keys) {
      size_t at = 0;
      for (size_t i = 0; i < key.size();) {
        size_t n = 1;
        const auto c = static_cast<unsigned char>(key[i]);
        if (c >= 0xF0) {
          n = 4;
        } else if (c >= 0xE0) {
          n = 3;
        } else if (c >= 0xC0) {
          n = 2;
        }
        const std::string ch = key.substr(i, n);
        i += n;
        auto it = nodes[at].children.find(ch);
        if (it == nodes[at].children.end()) {
          it = nodes[at].children.emplace(ch, nodes.size()).first;
          nodes.emplace_back();
        }
        at = it->second;
      }
      nodes[at].is_key = true;
    }
    const std::string tail = add_rule(name + "-key-tail", keychar + "* \"\\\"\"");
    std::vector<std::string> rule_of(nodes.size());
    // Children are numbered after their parents: build bottom-up.
    for (size_t i = nodes.size(); i-- > 0;) {
      const Node& node = nodes[i];
      std::vector<std::string> alts;
      if (!node.is_key) alts.push_back("\"\\\"\"");
      std::string others = "[^\"\\\\\\x00-\\x1F";
      for (const auto& [ch, child] : node.children) {
        // Key characters that need JSON escapes never appear unescaped in a generated name.
        const bool plain = ch != "\"" && ch != "\\" && static_cast<unsigned char>(ch[0]) >= 0x20;
        if (plain) alts.push_back(literal(ch) + " " + rule_of[child]);
        if (ch == "]" || ch == "-" || ch == "^") {
          others += "\\" + ch;
        } else if (plain) {
          others += ch;
        }
      }
      alts.push_back(others + "] " + tail);
      std::string body;
      for (size_t a = 0; a < alts.size(); ++a) body += (a ? " | " : "") + alts[a];
      rule_of[i] = add_rule(name + "-key-" + std::to_string(i), body);
    }
    return "\"\\\"\" " + rule_of[0];
  }

  static std::optional<int64_t> count(const Json& schema, const char* key) {
    if (!schema.contains(key)) return std::nullopt;
    const Json& v = schema[key];
    if (!v.is_number() || v.get<double>() < 0)
      unsupported(std::string(key) + " must be a non-negative number");
    const double d = v.get<double>();
    return d > 1e18 ? int64_t{1} << 62 : static_cast<int64_t>(d);
  }

  // min/max counts as a GBNF repetition suffix for an item that is already there once.
  static void check_counts(int64_t min, std::optional<int64_t>& max, const char* what) {
    if (min > kMaxCount) {
      unsupported(std::string(what) + " " + std::to_string(min) + " is above the limit " +
                  std::to_string(kMaxCount));
    }
    if (max && *max > kMaxCount) max.reset();
    if (max && *max < min) unsupported(std::string(what) + " bounds are contradictory");
  }

  static std::string repetition(int64_t min, std::optional<int64_t> max) {
    return "{" + std::to_string(min) + "," + (max ? std::to_string(*max) : "") + "}";
  }

  std::string array_rule(const Json& schema, const std::string& name, int depth) {
    const std::string ws = use("ws");
    int64_t min = count(schema, "minItems").value_or(0);
    std::optional<int64_t> max = count(schema, "maxItems");
    check_counts(min, max, "minItems/maxItems");
    std::vector<std::string> prefix;
    if (schema.contains("prefixItems")) {
      const Json& items = schema["prefixItems"];
      if (!items.is_array()) unsupported("prefixItems must be an array");
      for (size_t i = 0; i < items.size(); ++i) {
        prefix.push_back(visit(items[i], name + "-" + std::to_string(i), depth + 1));
      }
    }
    std::string item;
    if (schema.contains("items")) {
      const Json& items = schema["items"];
      if (items.is_array()) {
        // Draft 4-2019 tuples: items as an array means prefixItems.
        for (size_t i = 0; i < items.size(); ++i) {
          prefix.push_back(visit(items[i], name + "-" + std::to_string(i), depth + 1));
        }
        if (schema.contains("additionalItems")) {
          const Json& more = schema["additionalItems"];
          if (!(more.is_boolean() && !more.get<bool>()))
            item = visit(more, name + "-item", depth + 1);
        }
      } else if (!(items.is_boolean() && !items.get<bool>())) {
        item = visit(items, name + "-item", depth + 1);
      }
    } else if (prefix.empty()) {
      item = use("value");
    }
    const auto n_prefix = static_cast<int64_t>(prefix.size());
    if (max && *max < n_prefix) unsupported("maxItems is below the number of prefixItems");
    std::string body = "\"[\" " + ws;
    if (!prefix.empty()) {
      for (size_t i = 0; i < prefix.size(); ++i) {
        body += (i ? " \",\" " + ws + " " : " ") + prefix[i] + " " + ws;
      }
      if (!item.empty()) {
        std::optional<int64_t> more_max;
        if (max) more_max = *max - n_prefix;
        const int64_t more_min = std::max<int64_t>(0, min - n_prefix);
        if (!more_max || *more_max > 0) {
          body += " ( \",\" " + ws + " " + item + " " + ws + " )" + repetition(more_min, more_max);
        }
      } else if (min > n_prefix) {
        unsupported("minItems needs more items than prefixItems allows");
      }
      return add_rule(name, body + " \"]\"");
    }
    if (item.empty()) {
      if (min > 0) unsupported("minItems > 0 but items is false");
      return add_rule(name, body + " \"]\"");
    }
    if (max && *max == 0) return add_rule(name, body + " \"]\"");
    std::optional<int64_t> tail_max;
    if (max) tail_max = *max - 1;
    std::string list = item + " " + ws + " ( \",\" " + ws + " " + item + " " + ws + " )" +
                       repetition(std::max<int64_t>(0, min - 1), tail_max);
    body += min > 0 ? " " + list : " ( " + list + " )?";
    return add_rule(name, body + " \"]\"");
  }

  std::string string_rule(const Json& schema, const std::string& name) {
    if (schema.contains("pattern")) {
      const Json& pattern = schema["pattern"];
      if (!pattern.is_string()) unsupported("pattern must be a string");
      if (schema.contains("minLength") || schema.contains("maxLength")) {
        unsupported("pattern together with minLength/maxLength is not supported");
      }
      return add_rule(name,
                      "\"\\\"\" ( " + regex_to_gbnf(pattern.get<std::string>()) + " ) \"\\\"\"");
    }
    if (schema.contains("format")) {
      const std::string format =
          schema["format"].is_string() ? schema["format"].get<std::string>() : "";
      if (format == "date" || format == "time" || format == "date-time" || format == "uuid") {
        return add_rule(name, "\"\\\"\" " + use(format) + " \"\\\"\"");
      }
      // Other formats (email, uri, ...) are annotations; any string is produced.
    }
    const int64_t min = count(schema, "minLength").value_or(0);
    std::optional<int64_t> max = count(schema, "maxLength");
    if (min == 0 && !max) return use("string");
    check_counts(min, max, "minLength/maxLength");
    return add_rule(name, "\"\\\"\" " + use("char") + repetition(min, max) + " \"\\\"\"");
  }

  static std::optional<int64_t> integer_bound(const Json& schema, const char* key,
                                              const char* exclusive, bool lower) {
    auto read = [&](const char* k) -> std::optional<double> {
      if (!schema.contains(k)) return std::nullopt;
      const Json& v = schema[k];
      if (v.is_boolean()) return std::nullopt;  // draft 4's boolean exclusive* flags
      if (!v.is_number()) unsupported(std::string(k) + " must be a number");
      return v.get<double>();
    };
    std::optional<int64_t> out;
    if (const auto b = read(key)) {
      const bool draft4_exclusive = schema.contains(exclusive) && schema[exclusive].is_boolean() &&
                                    schema[exclusive].get<bool>();
      if (std::fabs(*b) > kMaxIntegerBound) unsupported(std::string(key) + " is beyond ±1e15");
      double v = lower ? std::ceil(*b) : std::floor(*b);
      if (draft4_exclusive && v == *b) v += lower ? 1 : -1;
      out = static_cast<int64_t>(v);
    }
    if (const auto b = read(exclusive)) {
      if (std::fabs(*b) > kMaxIntegerBound)
        unsupported(std::string(exclusive) + " is beyond ±1e15");
      const double v = lower ? std::floor(*b) + 1 : std::ceil(*b) - 1;
      const auto e = static_cast<int64_t>(v);
      out = out ? (lower ? std::max(*out, e) : std::min(*out, e)) : e;
    }
    return out;
  }

  std::string integer_rule(const Json& schema, const std::string& name) {
    const std::optional<int64_t> lo = integer_bound(schema, "minimum", "exclusiveMinimum", true);
    const std::optional<int64_t> hi = integer_bound(schema, "maximum", "exclusiveMaximum", false);
    if (!lo && !hi) return use("integer");
    if (lo && hi && *lo > *hi) unsupported("minimum is above maximum");
    std::vector<std::string> alts;
    if (!lo || *lo < 0) {
      // Negative part: "-" then magnitudes in [max(1, -hi), -lo].
      const int64_t mag_lo = hi ? std::max<int64_t>(1, -*hi) : 1;
      std::optional<int64_t> mag_hi;
      if (lo) mag_hi = -*lo;
      if (!mag_hi || mag_lo <= *mag_hi) {
        alts.push_back("\"-\" ( " + natural_range(mag_lo, mag_hi) + " )");
      }
    }
    if (!hi || *hi >= 0) {
      alts.push_back(natural_range(lo ? std::max<int64_t>(0, *lo) : 0, hi));
    }
    std::string body;
    for (size_t i = 0; i < alts.size(); ++i) body += (i ? " | " : "") + alts[i];
    return add_rule(name, body);
  }

  const Json& root_;
  std::map<std::string, std::string> rules_;
  std::vector<std::string> order_;
  std::set<std::string> reserved_;
  std::map<std::string, std::string> refs_;
  size_t bytes_ = 0;
};

}  // namespace

std::string Grammar::json_schema_to_gbnf(const nlohmann::ordered_json& schema) {
  try {
    return Converter(schema).convert();
  } catch (const nlohmann::json::exception& e) {
    // A keyword holding a value of the wrong JSON type.
    throw std::invalid_argument(std::string("JSON schema: ") + e.what());
  }
}

std::string Grammar::json_schema_to_gbnf(const nlohmann::json& schema) {
  return json_schema_to_gbnf(nlohmann::ordered_json::parse(schema.dump()));
}

std::shared_ptr<const Grammar> Grammar::json_schema(const nlohmann::ordered_json& schema) {
  const std::string gbnf = json_schema_to_gbnf(schema);
  try {
    return parse(gbnf);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("JSON schema: ") + e.what());
  }
}

std::shared_ptr<const Grammar> Grammar::json_schema(const nlohmann::json& schema) {
  return json_schema(nlohmann::ordered_json::parse(schema.dump()));
}

std::shared_ptr<const Grammar> Grammar::json_schema_text(std::string_view schema_json) {
  nlohmann::ordered_json schema;
  try {
    schema = nlohmann::ordered_json::parse(schema_json);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("JSON schema is not valid JSON: ") + e.what());
  }
  return json_schema(schema);
}

}  // namespace corral::sample
