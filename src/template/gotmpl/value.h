// The values a Go text/template sees, reduced to what chat templates need: Go's basic kinds, nil,
// slices, string-keyed maps (ranged and printed in sorted key order, like Go's maps), structs with
// exported fields, and functions (for `call`). A composite may carry the text its Go String()
// method would print and the JSON its Go type would marshal to, so Ollama's wrapper types (tools
// and tool-call arguments printing as JSON) behave as they do in Ollama.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace corral::tmpl::gotmpl {

class Value;
// A function value (data for `call`, and the implementation of template functions). Throws
// std::runtime_error to fail the call; the message becomes "error calling NAME: MESSAGE".
using Function = std::function<Value(std::span<const Value>)>;

enum class Kind {
  kInvalid,  // Go's invalid reflect.Value: a missing map key; prints "<no value>"
  kNil,      // a nil interface or pointer; prints "<nil>"
  kBool,
  kInt,
  kFloat,
  kString,
  kList,
  kMap,
  kObject,
  kFunc,
};

class Value {
 public:
  using List = std::vector<Value>;
  using Map = std::map<std::string, Value>;
  using Fields = std::vector<std::pair<std::string, Value>>;

  Value() = default;
  Value(bool b) : kind_(Kind::kBool), int_(b) {}    // NOLINT: implicit like Go's untyped constants
  Value(int i) : kind_(Kind::kInt), int_(i) {}      // NOLINT
  Value(int64_t i) : kind_(Kind::kInt), int_(i) {}  // NOLINT
  Value(double f) : kind_(Kind::kFloat), float_(f) {}   // NOLINT
  Value(std::string s);                                 // NOLINT
  Value(const char* s) : Value(std::string(s)) {}       // NOLINT
  Value(std::string_view s) : Value(std::string(s)) {}  // NOLINT

  static Value nil() {
    Value v;
    v.kind_ = Kind::kNil;
    return v;
  }
  // nil_slice: a Go nil slice (prints "[]" like an empty one, marshals to JSON null).
  static Value list(List items, bool nil_slice = false);
  // items()[from, to) of a list, sharing its elements as a Go slice shares its array (templates
  // take `slice $.Messages $i` once per message; a copy each time would be quadratic).
  static Value sublist(const Value& list, size_t from, size_t to);
  static Value map(Map entries, bool nil_map = false);
  // A struct: fields in declaration order; type_name as Go's %T prints it.
  static Value object(std::string type_name, Fields fields);
  static Value func(Function fn);

  // The text Go's String() method of this value's type returns.
  Value with_text(std::string text) const;
  // The JSON encoding/json produces for this value's type (a MarshalJSON method or struct tags).
  Value with_json(std::string json) const;
  // Go's %T of the value.
  Value with_type_name(std::string type_name) const;
  // A method without parameters that templates may call as a field (.Name), taking precedence
  // over map keys and struct fields as Go's method lookup does. A value with text has String.
  Value with_method(std::string name, std::function<Value()> fn) const;

  Kind kind() const { return kind_; }
  bool is_invalid() const { return kind_ == Kind::kInvalid; }
  bool is_nil() const { return kind_ == Kind::kNil; }
  bool as_bool() const { return int_ != 0; }
  int64_t as_int() const { return int_; }
  double as_float() const { return float_; }
  const std::string& as_string() const;
  std::span<const Value> items() const;
  const Map& entries() const;
  const Fields& fields() const;
  const Function& function() const;
  bool is_nil_container() const;  // a nil slice or nil map

  // A struct field by name, or nullptr.
  const Value* field(std::string_view name) const;
  // A method added by with_method (String where text is set), or nullptr.
  const std::function<Value()>* method(std::string_view name) const;
  // Go's String() text, JSON override and type name, where set.
  const std::string* text() const;
  const std::string* json() const;
  std::string type_name() const;

  // Go's truthiness: false, 0, nil, and empty strings, slices and maps are false.
  bool truthy() const;
  // Number of elements (strings: bytes); -1 for kinds without a length.
  int64_t length() const;

 private:
  struct Composite;
  Kind kind_ = Kind::kInvalid;
  int64_t int_ = 0;
  double float_ = 0;
  std::shared_ptr<const Composite> data_;
};

// fmt.Sprint of one value as Go's %v prints it (nested: true inside a slice, map or struct, where
// a nil prints "<nil>" rather than text/template's "<no value>").
std::string format_value(const Value& v, bool plus = false, bool nested = false);
// Go's strconv.FormatFloat(f, 'g', -1, 64) as %v prints floats ("1e+06", "0.1", "3").
std::string format_float_shortest(double f);
// encoding/json's Marshal of the value (sorted map keys, HTML-safe string escapes).
std::string marshal_json(const Value& v);
// Go's JSON encoding of a string: quotes, \" \\ \n \r \t \b \f, <>& and U+2028/9 as \u escapes,
// other control characters as \u00XX, invalid UTF-8 as \ufffd.
std::string json_quote(std::string_view s);
// Go's JSON encoding of a float64 (shortest round-trip digits, exponent below 1e-6 or from 1e21).
std::string json_float(double f);

// Decodes one UTF-8 sequence at s[pos] and advances pos; invalid input gives U+FFFD and advances
// one byte (Go's utf8.DecodeRuneInString). size_out receives the bytes consumed.
uint32_t decode_rune(std::string_view s, size_t& pos, size_t* size_out = nullptr);
std::string encode_rune(uint32_t cp);

}  // namespace corral::tmpl::gotmpl
