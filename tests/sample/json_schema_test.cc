// JSON schema -> grammar: random generation under the grammar (a walk over a small synthetic
// vocabulary, choosing only tokens mask() allows) must always give JSON that parses and
// validates against the schema, checked by a small validator for the keywords used here.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <random>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "sample/grammar.h"
#include "tokenizer/pretokenize.h"

namespace corral::sample {
namespace {

using Json = nlohmann::ordered_json;

// ---- a validator for the keywords these tests use (JSON Schema 2020-12 semantics) ----

bool validate(const Json& value, const Json& schema, const Json& root, std::string& why);

bool fail(std::string& why, const std::string& what) {
  why = what;
  return false;
}

const Json& resolve(const std::string& ref, const Json& root) {
  return ref == "#" ? root : root.at(Json::json_pointer(ref.substr(1)));
}

bool has_type(const Json& v, const std::string& type) {
  if (type == "object") return v.is_object();
  if (type == "array") return v.is_array();
  if (type == "string") return v.is_string();
  if (type == "boolean") return v.is_boolean();
  if (type == "null") return v.is_null();
  if (type == "number") return v.is_number();
  if (type == "integer") {
    return v.is_number_integer() ||
           (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
  }
  return false;
}

// Patterns match code points, not bytes: run them as wide regexes.
std::wstring wide(const std::string& s) {
  std::wstring out;
  for (size_t pos = 0; pos < s.size();) out += static_cast<wchar_t>(tokenizer::utf8_decode(s, pos));
  return out;
}

bool search(const std::string& text, const std::string& pattern) {
  return std::regex_search(wide(text), std::wregex(wide(pattern)));
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool validate(const Json& v, const Json& s, const Json& root, std::string& why) {
  if (s.is_boolean()) return s.get<bool>() || fail(why, "false schema");
  if (s.contains("$ref")) return validate(v, resolve(s["$ref"], root), root, why);
  if (s.contains("const") && v != s["const"]) return fail(why, "const");
  if (s.contains("enum")) {
    bool found = false;
    for (const Json& e : s["enum"]) found = found || e == v;
    if (!found) return fail(why, "enum");
  }
  if (s.contains("anyOf")) {
    bool any = false;
    for (const Json& sub : s["anyOf"]) any = any || validate(v, sub, root, why);
    if (!any) return fail(why, "anyOf");
  }
  if (s.contains("oneOf")) {
    int n = 0;
    for (const Json& sub : s["oneOf"]) n += validate(v, sub, root, why);
    if (n != 1) return fail(why, "oneOf matched " + std::to_string(n));
  }
  if (s.contains("allOf")) {
    for (const Json& sub : s["allOf"]) {
      if (!validate(v, sub, root, why)) return false;
    }
  }
  if (s.contains("type")) {
    bool ok = false;
    if (s["type"].is_array()) {
      for (const Json& t : s["type"]) ok = ok || has_type(v, t);
    } else {
      ok = has_type(v, s["type"]);
    }
    if (!ok) return fail(why, "type " + s["type"].dump());
  }
  if (v.is_object()) {
    const Json props = s.value("properties", Json::object());
    for (const Json& r : s.value("required", Json::array())) {
      if (!v.contains(r.get<std::string>())) return fail(why, "required " + r.dump());
    }
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (props.contains(it.key())) {
        if (!validate(it.value(), props[it.key()], root, why)) return false;
      } else if (s.contains("additionalProperties")) {
        if (!validate(it.value(), s["additionalProperties"], root, why)) {
          return fail(why, "additional property " + it.key() + ": " + why);
        }
      }
    }
  }
  if (v.is_array()) {
    size_t first = 0;
    if (s.contains("prefixItems")) {
      const Json& prefix = s["prefixItems"];
      for (size_t i = 0; i < prefix.size() && i < v.size(); ++i) {
        if (!validate(v[i], prefix[i], root, why)) return false;
      }
      first = prefix.size();
    }
    if (s.contains("items")) {
      for (size_t i = first; i < v.size(); ++i) {
        if (!validate(v[i], s["items"], root, why)) return false;
      }
    }
    if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>())
      return fail(why, "minItems");
    if (s.contains("maxItems") && v.size() > s["maxItems"].get<size_t>())
      return fail(why, "maxItems");
  }
  if (v.is_string()) {
    const std::string str = v.get<std::string>();
    if (s.contains("minLength") && code_points(str) < s["minLength"].get<size_t>()) {
      return fail(why, "minLength");
    }
    if (s.contains("maxLength") && code_points(str) > s["maxLength"].get<size_t>()) {
      return fail(why, "maxLength");
    }
    if (s.contains("pattern") && !search(str, s["pattern"].get<std::string>())) {
      return fail(why, "pattern");
    }
    if (s.contains("format")) {
      static const std::map<std::string, std::string> formats = {
          {"date", R"(^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$)"},
          {"time", R"(^([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$)"},
          {"date-time",
           R"(^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$)"},
          {"uuid",
           R"(^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$)"},
      };
      const auto f = formats.find(s["format"].get<std::string>());
      if (f != formats.end() && !search(str, f->second)) return fail(why, "format");
    }
  }
  if (v.is_number()) {
    const double d = v.get<double>();
    if (s.contains("minimum") && d < s["minimum"].get<double>()) return fail(why, "minimum");
    if (s.contains("maximum") && d > s["maximum"].get<double>()) return fail(why, "maximum");
    if (s.contains("exclusiveMinimum") && d <= s["exclusiveMinimum"].get<double>()) {
      return fail(why, "exclusiveMinimum");
    }
    if (s.contains("exclusiveMaximum") && d >= s["exclusiveMaximum"].get<double>()) {
      return fail(why, "exclusiveMaximum");
    }
  }
  return true;
}

// ---- random generation under a grammar ----

// Single printable characters, whitespace, JSON fragments, words used by the schemas below and
// a UTF-8 character cut in two; the last token is the end token.
std::shared_ptr<const TokenPieces> walk_pieces() {
  std::vector<std::string> pieces;
  for (char c = 0x20; c < 0x7F; ++c) pieces.emplace_back(1, c);
  for (const char* p : {"\n",       "\n  ", "\t",    "  ",    "true",     "false",
                        "null",     "\": ", "\":",   ", ",    "{\"",      "\"}",
                        "[]",       "{}",   "\\n",   "\\\"",  "\\u00e9",  "\\ud83e\\udd99",
                        "\\ud800",  "é",    "日本",  "\xC3",  "\xA9",     "\xF0\x9F",
                        "\xA6\x99", "12",   "-0",    "0.5",   "e+",       "E-",
                        "00",       "2024", "-01-",  "T12:",  ":00Z",     "name",
                        "\"name\"", "age",  "tags",  "ab",    "abc",      "\"ab",
                        "\"abc\"",  "zeta", "alpha", "value", "children", "-4",
                        "\"-"}) {
    pieces.emplace_back(p);
  }
  pieces.emplace_back("<end>");
  const auto end = static_cast<int32_t>(pieces.size() - 1);
  return std::make_shared<const TokenPieces>(std::move(pieces), std::span<const int32_t>(&end, 1));
}

struct Walk {
  std::string text;
  bool finished = false;
};

Walk random_walk(const std::shared_ptr<const Grammar>& g,
                 const std::shared_ptr<const TokenPieces>& pieces, std::mt19937& rng) {
  GrammarMatcher m(g, pieces);
  Walk walk;
  std::vector<float> logits(pieces->size());
  for (int step = 0; step < 600; ++step) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    m.mask(logits);
    std::vector<int32_t> allowed;
    std::vector<double> weights;
    for (size_t id = 0; id < logits.size(); ++id) {
      if (!std::isfinite(logits[id])) continue;
      const std::string& p = (*pieces)[id];
      allowed.push_back(static_cast<int32_t>(id));
      // Later in the walk, favour whatever closes things so most walks finish.
      const bool closing =
          pieces->is_end(static_cast<int32_t>(id)) || p == "}" || p == "]" || p == "\"";
      weights.push_back(closing && step > 40 ? 200.0 : 1.0);
    }
    if (allowed.empty()) {
      ADD_FAILURE() << "no token allowed after '" << walk.text << "'";
      return walk;
    }
    const int32_t id =
        allowed[std::discrete_distribution<size_t>(weights.begin(), weights.end())(rng)];
    // mask() and accepts() must agree on the choice and on a rejected token.
    EXPECT_TRUE(m.accepts(id));
    if (pieces->is_end(id)) {
      walk.finished = true;
      EXPECT_TRUE(m.accept(id));
      return walk;
    }
    walk.text += (*pieces)[static_cast<size_t>(id)];
    EXPECT_TRUE(m.accept(id));
  }
  return walk;
}

void expect_walks_validate(const std::string& schema_text, int walks = 60) {
  SCOPED_TRACE(schema_text);
  const Json schema = Json::parse(schema_text);
  std::shared_ptr<const Grammar> g;
  try {
    g = Grammar::json_schema(schema);
  } catch (const std::exception& e) {
    FAIL() << e.what() << "\n" << Grammar::json_schema_to_gbnf(schema);
  }
  static const auto pieces = walk_pieces();
  std::mt19937 rng(1234);
  int finished = 0;
  for (int i = 0; i < walks; ++i) {
    const Walk walk = random_walk(g, pieces, rng);
    if (!walk.finished) continue;
    ++finished;
    Json value;
    try {
      value = Json::parse(walk.text);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "does not parse: " << walk.text << "\n" << e.what();
      continue;
    }
    std::string why;
    EXPECT_TRUE(validate(value, schema, schema, why)) << walk.text << "\nfails: " << why;
  }
  EXPECT_GE(finished, walks * 3 / 4);
}

TEST(JsonSchemaGrammar, RandomOutputOfJsonObjectParses) {
  static const auto pieces = walk_pieces();
  std::mt19937 rng(99);
  int finished = 0;
  for (int i = 0; i < 60; ++i) {
    const Walk walk = random_walk(Grammar::json_object(), pieces, rng);
    if (!walk.finished) continue;
    ++finished;
    Json value;
    EXPECT_NO_THROW(value = Json::parse(walk.text)) << walk.text;
    EXPECT_TRUE(value.is_object()) << walk.text;
  }
  EXPECT_GE(finished, 45);
}

TEST(JsonSchemaGrammar, ObjectsWithRequiredAndOptionalProperties) {
  expect_walks_validate(R"({"type": "object", "properties": {
      "name": {"type": "string", "maxLength": 10},
      "age": {"type": "integer", "minimum": 0, "maximum": 120},
      "email": {"type": "string", "format": "email"},
      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}},
    "required": ["name", "age"], "additionalProperties": false})");
  expect_walks_validate(R"({"properties": {"a": {"type": "boolean"}, "b": {"type": "null"},
      "c": {"const": "x"}}})");
}

TEST(JsonSchemaGrammar, AdditionalPropertiesNeverRepeatADeclaredName) {
  // Extra keys must not spell "ab" or "abc" (they would be validated against null).
  expect_walks_validate(R"({"type": "object", "properties": {"ab": {"type": "null"},
      "abc": {"type": "null"}}, "additionalProperties": {"type": "integer"}})",
                        120);
  expect_walks_validate(R"({"type": "object"})");
  expect_walks_validate(R"({"type": "object", "additionalProperties": {"type": "boolean"}})");
}

TEST(JsonSchemaGrammar, ArraysTuplesAndItemCounts) {
  expect_walks_validate(R"({"type": "array", "prefixItems": [{"type": "string"},
      {"type": "integer"}, {"enum": ["x", 1, null, {"k": [true]}]}], "items": false})");
  expect_walks_validate(R"({"type": "array", "items": {"type": "integer", "minimum": -5,
      "maximum": 17}, "minItems": 2, "maxItems": 4})");
  expect_walks_validate(R"({"type": "array", "items": {"type": "number"}, "minItems": 1})");
  expect_walks_validate(R"({"type": "array"})");
}

TEST(JsonSchemaGrammar, AlternativesAndMergedAllOf) {
  expect_walks_validate(R"({"oneOf": [{"type": "string", "pattern": "^[a-c]{2}[0-9]+$"},
      {"type": "integer", "exclusiveMinimum": 100}, {"type": "null"}]})");
  expect_walks_validate(R"({"anyOf": [{"type": "boolean"}, {"type": "array", "maxItems": 1}]})");
  expect_walks_validate(R"({"allOf": [
      {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
      {"properties": {"b": {"type": "string"}}, "required": ["b"]},
      {"$ref": "#/$defs/c"}],
    "$defs": {"c": {"properties": {"c": {"type": "boolean"}}}}})");
  expect_walks_validate(R"({"type": ["integer", "string", "null"], "maxLength": 3})");
}

TEST(JsonSchemaGrammar, RefsIncludingRecursion) {
  expect_walks_validate(R"({"$defs": {"node": {"type": "object", "properties": {
      "value": {"type": "integer"},
      "children": {"type": "array", "items": {"$ref": "#/$defs/node"}, "maxItems": 2}},
      "required": ["value"]}}, "$ref": "#/$defs/node"})");
  expect_walks_validate(R"({"definitions": {"n": {"type": ["number", "null"]}},
      "type": "object", "properties": {"x": {"$ref": "#/definitions/n"},
      "y": {"$ref": "#/definitions/n"}}, "required": ["x", "y"]})");
}

TEST(JsonSchemaGrammar, StringLengthsFormatsAndPatterns) {
  expect_walks_validate(R"({"type": "string", "minLength": 2, "maxLength": 5})");
  expect_walks_validate(R"({"type": "object", "properties": {
      "when": {"type": "string", "format": "date-time"}, "day": {"type": "string", "format": "date"},
      "at": {"type": "string", "format": "time"}, "id": {"type": "string", "format": "uuid"}},
      "required": ["when", "day", "at", "id"]})");
  expect_walks_validate(R"({"type": "string", "pattern": "^\\d{3}-[A-Z]{2}(\\.[a-z]+)?$"})");
  expect_walks_validate(R"({"type": "string", "pattern": "^(ab|\"q\\\\)+[^a-y]?\\s\\w*$"})");
}

TEST(JsonSchemaGrammar, IntegerRanges) {
  for (const char* schema : {
           R"({"type": "integer", "minimum": -123, "maximum": 4567})",
           R"({"type": "integer", "minimum": 15})",
           R"({"type": "integer", "exclusiveMaximum": -7})",
           R"({"type": "integer", "minimum": 0, "maximum": 0})",
           R"({"type": "integer", "minimum": 1999, "maximum": 2001})",
       }) {
    expect_walks_validate(schema);
  }
  // Exhaustively: every integer in a window is accepted exactly when in range.
  const auto g =
      Grammar::json_schema(Json::parse(R"({"type": "integer", "minimum": -37, "maximum": 215})"));
  std::vector<std::string> vocab;
  for (char c : std::string("-0123456789")) vocab.emplace_back(1, c);
  vocab.emplace_back();
  const int32_t end = static_cast<int32_t>(vocab.size() - 1);
  const auto pieces = std::make_shared<const TokenPieces>(vocab, std::span<const int32_t>(&end, 1));
  for (int n = -1200; n <= 1200; ++n) {
    GrammarMatcher m(g, pieces);
    bool ok = true;
    for (const char c : std::to_string(n)) {
      ok = ok && m.accept(c == '-' ? 0 : c - '0' + 1);
    }
    EXPECT_EQ(ok && m.accepts(end), n >= -37 && n <= 215) << n;
  }
}

TEST(JsonSchemaGrammar, PropertiesKeepTheSchemaOrder) {
  const std::string schema = R"({"type": "object", "properties": {"zeta": {"type": "integer"},
      "alpha": {"type": "integer"}}, "required": ["zeta", "alpha"]})";
  const auto pieces = walk_pieces();
  std::mt19937 rng(5);
  for (int i = 0; i < 10; ++i) {
    const Walk ordered = random_walk(Grammar::json_schema_text(schema), pieces, rng);
    if (ordered.finished)
      EXPECT_LT(ordered.text.find("zeta"), ordered.text.find("alpha")) << ordered.text;
  }
  const std::string gbnf = Grammar::json_schema_to_gbnf(Json::parse(schema));
  EXPECT_LT(gbnf.find("zeta"), gbnf.find("alpha")) << gbnf;
}

std::string schema_error(const std::string& schema_text) {
  try {
    Grammar::json_schema_text(schema_text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(JsonSchemaGrammar, UnsupportedOrHostileSchemasGiveClearErrorsQuickly) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_NE(schema_error(R"({"type": "foo"})").find("unknown type 'foo'"), std::string::npos);
  EXPECT_NE(schema_error(R"({"$ref": "https://example.com/s.json"})").find("not local"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"$ref": "#/$defs/missing"})").find("does not resolve"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"$ref": "#"})").find("left recursion"), std::string::npos);
  EXPECT_NE(schema_error(
                R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"anyOf": [{"$ref": "#/$defs/a"}]}},
      "$ref": "#/$defs/a"})")
                .find("left recursion"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type": "string", "pattern": "(a)\\1"})").find("backreferences"),
            std::string::npos);
  EXPECT_NE(schema_error(R"x({"type": "string", "pattern": "a(?=b)"})x").find("lookaround"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type": "array", "minItems": 1000000000})").find("above the limit"),
            std::string::npos);
  EXPECT_NE(schema_error(R"({"type": "string", "minLength": 99999})").find("above the limit"),
            std::string::npos);
  EXPECT_NE(
      schema_error(R"({"type": "integer", "minimum": 10, "maximum": 5})").find("above maximum"),
      std::string::npos);
  EXPECT_NE(schema_error("{\"type\": ").find("not valid JSON"), std::string::npos);
  EXPECT_NE(schema_error(R"({"allOf": [{"type": "string"}, {"type": "integer"}]})").find("allOf"),
            std::string::npos);
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += R"({"type": "array", "items": )";
  deep += "{}" + std::string(5000, '}');
  EXPECT_NE(schema_error(deep).find("nested deeper"), std::string::npos);
  std::string wide = R"({"type": "object", "properties": {)";
  for (int i = 0; i < 300; ++i) {
    wide += (i ? "," : "") + std::string("\"p") + std::to_string(i) +
            R"(": {"type": "string", "maxLength": 9000})";
  }
  wide += "}}";
  const std::string wide_error = schema_error(wide);
  EXPECT_NE(wide_error.find("too large"), std::string::npos) << wide_error;
  // A huge maximum is no maximum, not a huge grammar.
  EXPECT_NO_THROW(Grammar::json_schema_text(R"({"type": "string", "maxLength": 1000000000})"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

}  // namespace
}  // namespace corral::sample
